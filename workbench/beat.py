"""Beat's scheduler (CELERY_BEAT_SCHEDULER): django-celery-beat's database scheduler that also
ensures the periodic tasks at start and writes a heartbeat the status page reads.

A deployment started with `celery -A workbench beat` uses it; the migration already created the
tasks, so a beat started with another scheduler still runs them, and the status page then
relies on the minute tick's own heartbeat.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_SECONDS = 15.0  # the loop wakes at least every 5 s (DatabaseScheduler)


class Scheduler(DatabaseScheduler):
    _heartbeat_at = 0.0

    def setup_schedule(self) -> None:
        from active_learning.services.schedules import schedules_ensure

        try:
            schedules_ensure()
        except Exception:  # beat still runs what the database holds; the log says why
            log.exception("could not ensure the periodic tasks")
        super().setup_schedule()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if time.monotonic() - self._heartbeat_at >= HEARTBEAT_EVERY_SECONDS:
            self._heartbeat()
        return float(super().tick(*args, **kwargs))

    def _heartbeat(self) -> None:
        from django.db import close_old_connections

        from workbench.core.heartbeats import BEAT, heartbeat_write

        try:
            heartbeat_write(name=BEAT)
            self._heartbeat_at = time.monotonic()
        except Exception:  # a database hiccup must not stop beat; the page shows the silence
            log.warning("could not write beat's heartbeat", exc_info=True)
            close_old_connections()
