"""Site-wide tasks: a round-trip probe that proves a worker shares our database."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="workbench.ping")
def ping(token: str) -> dict[str, Any]:
    """Echo `token` with what the worker sees: its database vendor and the number of projects."""
    from django.db import connection

    from labeling.models import Project

    return {"token": token, "vendor": connection.vendor, "projects": Project.objects.count()}
