"""Thin Celery tasks of the labeling app: ids in, the service of the same name called."""

from __future__ import annotations

from celery import shared_task

from labeling.services.exports.jobs import case_export_run
from labeling.services.imports.jobs import case_import_run


@shared_task(name="labeling.case_import", ignore_result=True)
def case_import_task(job_id: int) -> None:
    """Run an uploaded file's import job. Not retried: a failed job says why and the file is
    gone; the admin uploads again. Idempotent: a job that already started is skipped."""
    case_import_run(job_id=job_id)


@shared_task(name="labeling.case_export", ignore_result=True)
def case_export_task(job_id: int) -> None:
    """Run an export job from scratch. Not retried by Celery: a job the reaper fails is run
    again by the minute tick (`export_jobs_recover`). Idempotent: a started job is skipped."""
    case_export_run(job_id=job_id)
