"""Periodic tasks in django-celery-beat's database scheduler, in every deployment.

- every minute: the tick (reap stale jobs, re-request lost retrains, start due ones);
- RETRAIN_CRON (default 02:00 every night, empty for none): a full retrain of every project.

`schedules_ensure` runs from a migration (so `migrate` alone installs them) and whenever beat
starts (`workbench.beat.Scheduler`), so a changed RETRAIN_CRON takes effect at the next start.
It is idempotent and keeps admins' edits (Periodic tasks in the admin): the tick is only
created, and the nightly task records the RETRAIN_CRON it came from in its description, so it
is replaced only when RETRAIN_CRON itself changes (an empty one disables it).
"""

from __future__ import annotations

import re
from typing import Any

from celery.schedules import crontab
from django.conf import settings

PIPELINE_TICK = "pipeline tick (every minute)"
MINUTE_TICK_TASK = "workbench.minute_tick"
NIGHTLY_RETRAIN = "full retrain of every project"
NIGHTLY_TASK = "active_learning.retrain_all"
ERR_CRON = "RETRAIN_CRON must have five fields (minute hour day month weekday), got {value!r}."
ERR_CRON_FIELD = "RETRAIN_CRON {value!r} is not a valid cron schedule: {problem}"
SOURCE = "Created from RETRAIN_CRON='{cron}'. Edit the schedule here; a different RETRAIN_CRON replaces it when beat next starts (empty: disabled)."
_SOURCE_RE = re.compile(r"RETRAIN_CRON='([^']*)'")


def cron_fields(value: str) -> list[str]:
    """RETRAIN_CRON's five fields ([] when empty); ValueError naming the problem otherwise."""
    fields = str(value).split()
    if not fields:
        return []
    if len(fields) != 5:
        raise ValueError(ERR_CRON.format(value=value))
    minute, hour, day, month, weekday = fields
    try:
        crontab(
            minute=minute, hour=hour, day_of_month=day, month_of_year=month, day_of_week=weekday
        )
    except ValueError as exc:
        raise ValueError(ERR_CRON_FIELD.format(value=value, problem=exc)) from exc
    return fields


def _runtime_models() -> tuple[Any, Any, Any]:
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    return PeriodicTask, IntervalSchedule, CrontabSchedule


def schedules_ensure(*, models: tuple[Any, Any, Any] | None = None) -> list[Any]:
    """Create the tick and the nightly retrain if missing; returns the enabled ones.

    `models` (PeriodicTask, IntervalSchedule, CrontabSchedule) lets a migration pass its
    historical models."""
    periodic_task, interval_schedule, crontab_schedule = models or _runtime_models()
    cron = " ".join(cron_fields(settings.RETRAIN_CRON))  # validated before anything is written
    every_minute, _ = interval_schedule.objects.get_or_create(every=60, period="seconds")
    tick, _ = periodic_task.objects.get_or_create(
        name=PIPELINE_TICK, defaults={"task": MINUTE_TICK_TASK, "interval": every_minute}
    )
    if tick.task != MINUTE_TICK_TASK:  # a row from before the tick moved to workbench/
        tick.task = MINUTE_TICK_TASK
        tick.save(update_fields=["task"])
    nightly = periodic_task.objects.filter(name=NIGHTLY_RETRAIN).first()
    source = _SOURCE_RE.search(nightly.description) if nightly is not None else None
    if nightly is not None and source is not None and source.group(1) == cron:
        pass  # RETRAIN_CRON unchanged since the row was made: an admin's edits stand
    elif not cron:
        if nightly is not None:
            nightly.enabled = False
            nightly.description = SOURCE.format(cron="")
            nightly.save(update_fields=["enabled", "description"])
    else:
        minute, hour, day, month, weekday = cron.split()
        schedule, _ = crontab_schedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day,
            month_of_year=month,
            day_of_week=weekday,
            timezone=settings.TIME_ZONE,
        )
        if nightly is None:
            nightly = periodic_task(name=NIGHTLY_RETRAIN, task=NIGHTLY_TASK)
        nightly.task = NIGHTLY_TASK
        nightly.crontab = schedule
        nightly.interval = None
        nightly.enabled = True
        nightly.description = SOURCE.format(cron=cron)
        nightly.save()
    return list(
        periodic_task.objects.filter(name__in=[PIPELINE_TICK, NIGHTLY_RETRAIN], enabled=True)
    )
