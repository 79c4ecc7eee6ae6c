"""Periodic tasks in django-celery-beat's database scheduler, created idempotently.

- every minute: the due-check (reap stale jobs, start retrains whose label counter passed N);
- RETRAIN_CRON (default 02:00 every night, empty to disable): a full retrain of every project.
Admins can change both in the admin (Periodic tasks); `schedules_ensure` only creates them.
"""

from __future__ import annotations

from django.conf import settings
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

PIPELINE_TICK = "pipeline tick (every minute)"
MINUTE_TICK_TASK = "workbench.minute_tick"
NIGHTLY_RETRAIN = "full retrain of every project"
ERR_CRON = "RETRAIN_CRON must have five fields (minute hour day month weekday), got {value!r}."


def schedules_ensure() -> list[PeriodicTask]:
    every_minute, _ = IntervalSchedule.objects.get_or_create(
        every=60, period=IntervalSchedule.SECONDS
    )
    tick, _ = PeriodicTask.objects.get_or_create(
        name=PIPELINE_TICK,
        defaults={"task": MINUTE_TICK_TASK, "interval": every_minute},
    )
    if tick.task != MINUTE_TICK_TASK:  # a row from before the tick moved to workbench/
        tick.task = MINUTE_TICK_TASK
        tick.save(update_fields=["task"])
    tasks = [tick]
    cron = str(settings.RETRAIN_CRON).split()
    if cron:
        if len(cron) != 5:
            raise ValueError(ERR_CRON.format(value=settings.RETRAIN_CRON))
        minute, hour, day, month, weekday = cron
        schedule, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day,
            month_of_year=month,
            day_of_week=weekday,
            timezone=settings.TIME_ZONE,
        )
        nightly, _ = PeriodicTask.objects.get_or_create(
            name=NIGHTLY_RETRAIN,
            defaults={"task": "active_learning.retrain_all", "crontab": schedule},
        )
        tasks.append(nightly)
    return tasks
