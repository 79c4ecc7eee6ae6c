"""Heartbeats of long-lived processes (beat's scheduler loop, the minute tick), for the status page.

One row per name, overwritten in place: cheap enough to write every few seconds.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from workbench.core.models import Heartbeat

BEAT = "beat"  # beat's scheduler loop (workbench.beat), every 15 s
TICK = "tick"  # the minute tick, when a worker runs it (workbench.tick)


def heartbeat_write(*, name: str, now: datetime | None = None) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": now or timezone.now()})


def heartbeat_ages(*names: str) -> dict[str, float | None]:
    """Seconds since each name's last heartbeat (None: never)."""
    now = timezone.now()
    seen = dict(Heartbeat.objects.filter(name__in=names).values_list("name", "beat_at"))
    return {n: (now - seen[n]).total_seconds() if n in seen else None for n in names}
