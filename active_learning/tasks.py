"""Thin Celery tasks: ids in, the service of the same name called."""

from __future__ import annotations

from celery import shared_task

from active_learning.services.jobs import job_reap_stale


@shared_task(name="active_learning.pipeline_tick", ignore_result=True)
def pipeline_tick() -> list[int]:
    """Every minute (beat): fail jobs whose heartbeat stopped and free their leases."""
    return job_reap_stale()
