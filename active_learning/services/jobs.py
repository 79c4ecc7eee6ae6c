"""Jobs the UI can follow, with a heartbeat; a job whose heartbeat stops is failed by the reaper."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from active_learning.models import Job, JobStatus, Lease
from labeling.models import Project

ERR_STALE = "No heartbeat for {seconds:.0f} s: the worker running this job died or hung."


def job_create(
    *, kind: str, project: Project | None = None, params: dict[str, Any] | None = None
) -> Job:
    return Job.objects.create(kind=kind, project=project, params=params or {})


def job_reap_stale(*, now: Any = None) -> list[int]:
    """Fail running jobs whose heartbeat is older than JOB_STALE_SECONDS and free their leases.

    Returns the ids of the jobs it failed.
    """
    now = now or timezone.now()
    stale_after = float(settings.JOB_STALE_SECONDS)
    cutoff = now - timedelta(seconds=stale_after)
    reaped: list[int] = []
    with transaction.atomic():
        stale = Job.objects.select_for_update().filter(
            status=JobStatus.RUNNING, heartbeat_at__lt=cutoff
        )
        for job in stale:
            job.status = JobStatus.FAILED
            job.error = ERR_STALE.format(seconds=(now - job.heartbeat_at).total_seconds())
            job.finished_at = now
            job.save(update_fields=["status", "error", "finished_at"])
            reaped.append(job.pk)
        if reaped:
            Lease.objects.filter(job_id__in=reaped).delete()
    return reaped
