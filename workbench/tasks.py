"""Site-wide tasks: the minute tick, and a round-trip probe that proves a worker shares our
database."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="workbench.ping")
def ping(token: str) -> dict[str, Any]:
    """Echo `token` with what the worker sees: its database vendor and the number of projects."""
    from django.db import connection

    from labeling.models import Project

    return {"token": token, "vendor": connection.vendor, "projects": Project.objects.count()}


@shared_task(name="workbench.minute_tick", ignore_result=True)
def minute_tick() -> dict[str, Any]:
    """Every minute (beat): `workbench.tick.minute_tick`."""
    from workbench.tick import minute_tick as run

    return run()


# Beat rows written before the tick moved here name the old task: keep them working.
pipeline_tick = shared_task(name="active_learning.pipeline_tick", ignore_result=True)(
    minute_tick.run
)
