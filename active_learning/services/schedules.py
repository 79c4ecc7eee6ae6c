"""Periodic tasks in django-celery-beat's database scheduler, created idempotently."""

from __future__ import annotations

from django_celery_beat.models import IntervalSchedule, PeriodicTask

PIPELINE_TICK = "pipeline tick (every minute)"


def schedules_ensure() -> list[PeriodicTask]:
    """The minute tick that reaps stale jobs (and, with the pipeline, starts due retrains)."""
    every_minute, _ = IntervalSchedule.objects.get_or_create(
        every=60, period=IntervalSchedule.SECONDS
    )
    tick, _ = PeriodicTask.objects.update_or_create(
        name=PIPELINE_TICK,
        defaults={
            "task": "active_learning.pipeline_tick",
            "interval": every_minute,
            "enabled": True,
        },
    )
    return [tick]
