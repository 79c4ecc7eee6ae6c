"""Imports from the upload page: the file is streamed to WORKBENCH_DATA_DIR, then a Job runs it.

`case_import_upload` stores the upload and queues the job (sent on commit; the job row, not the
broker, is the copy that counts); `case_import_run` is what the Celery task calls;
`import_jobs_resend_stale` (the minute tick) resends queued jobs whose message was lost;
`case_import_job_state` is what the page shows while it polls.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.utils import timezone

from labeling.models import Project
from labeling.services.imports import Columns, ImportReport, case_import
from labeling.services.imports.report import printable
from workbench.core.jobs import (
    FINISHED,
    job_claim,
    job_create,
    job_progress,
    job_progress_aside,
    job_running,
    job_send,
    job_set_result,
)
from workbench.core.models import Job, JobKind, JobStatus

IMPORT_JOB_KIND = JobKind.CASE_IMPORT
RESEND_AFTER_SECONDS = 120  # a queued import job older than this lost its message: resend it
PROGRESS_SECONDS = 1.0
# Share of the bar each phase fills: validation first, then the writes.
_PHASES = {"validate": (0.0, 0.5, "Validating"), "write": (0.5, 0.45, "Writing")}
_PHASES["update"] = (0.95, 0.05, "Updating")


def upload_dir() -> Path:
    return Path(settings.WORKBENCH_DATA_DIR) / "uploads"


@transaction.atomic
def case_import_upload(
    *,
    project: Project,
    upload: UploadedFile,
    columns: Columns,
    update: bool = False,
    actor: Any = None,
) -> Job:
    """Stream `upload` into the uploads folder and queue an import job; returns the job."""
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    file_name = printable(Path(upload.name or "upload").name, 200)  # stored in JSON: no NUL
    path = folder / f"{uuid.uuid4().hex}{Path(file_name).suffix.lower()}"
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    job = job_create(
        kind=IMPORT_JOB_KIND,
        project=project,
        params={
            "path": str(path),
            "file_name": file_name,
            "columns": asdict(columns),
            "update": update,
            "actor_id": getattr(actor, "pk", None),
        },
    )
    transaction.on_commit(lambda: _send(job.pk))
    return job


def _queue_for(job_id: int) -> str:
    """The short-jobs queue for a small file (done in seconds, it should not wait behind a
    retrain), the default one for a large file (minutes; it would hold up the minute tick)."""
    params = Job.objects.values_list("params", flat=True).get(pk=job_id) or {}
    try:
        size = Path(str(params.get("path", ""))).stat().st_size
    except OSError:
        size = 0  # a missing file fails at once, wherever it runs
    small = size <= settings.IMPORT_SHORT_MAX_BYTES
    return str(settings.SHORT_QUEUE if small else settings.DEFAULT_QUEUE)


def _send(job_id: int) -> bool:
    """Send the job to a worker; never raises (`import_jobs_resend_stale` sends it again)."""
    from labeling.tasks import case_import_task  # tasks import services, not the reverse

    return job_send(job_id=job_id, task=case_import_task, queue=_queue_for(job_id))


def import_jobs_resend_stale(*, now: datetime | None = None) -> list[int]:
    """Send again the import jobs queued more than RESEND_AFTER_SECONDS ago; returns those sent.

    Their message was lost (broker down at upload, or the filesystem broker's worker killed after
    receiving it). A duplicate is harmless: only one runner claims a queued job. Never raises;
    the minute tick calls it.
    """
    cutoff = (now or timezone.now()) - timedelta(seconds=RESEND_AFTER_SECONDS)
    stale = Job.objects.filter(
        kind=IMPORT_JOB_KIND, status=JobStatus.QUEUED, created_at__lt=cutoff
    ).order_by("pk")
    return [pk for pk in stale.values_list("pk", flat=True) if _send(pk)]


class _JobProgress:
    """The import's progress callback: at most one write a second.

    Inside the import's transaction the write goes through another connection (a short thread)
    so the page sees it; on SQLite that transaction holds the only write lock, so it waits.
    """

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.last = 0.0

    def __call__(self, phase: str, fraction: float) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_SECONDS:
            return
        self.last = now
        start, width, words = _PHASES.get(phase, (0.0, 1.0, phase))
        value, message = start + width * fraction, f"{words}: {fraction:.0%}"
        if not connection.in_atomic_block:
            job_progress(job_id=self.job_id, progress=value, message=message)
        elif connection.vendor != "sqlite":
            job_progress_aside(job_id=self.job_id, progress=value, message=message)


def case_import_run(*, job_id: int) -> ImportReport | None:
    """Run a queued import job (idempotent: a job already started is left alone).

    Exactly one runner moves the job out of `queued` (a conditional update), however many
    messages carry it; the others return None.
    """
    job = job_claim(job_id=job_id, kind=IMPORT_JOB_KIND)
    if job is None:
        return None
    assert job.project is not None
    params = job.params
    actor = get_user_model().objects.filter(pk=params.get("actor_id")).first()
    path = Path(params["path"])
    try:
        with job_running(job):
            report = case_import(
                project=job.project,
                path=path,
                file_name=params["file_name"],
                columns=Columns(**params["columns"]),
                update=bool(params.get("update")),
                actor=actor,
                progress=_JobProgress(job.pk),
            )
            job_set_result(job_id=job.pk, result=report.to_dict(), message=report.summary())
            if not report.ok:
                # Nothing was imported: the job failed (its report says why), whatever ran.
                Job.objects.filter(pk=job.pk).update(
                    status=JobStatus.FAILED, finished_at=timezone.now()
                )
    finally:
        path.unlink(missing_ok=True)  # the report keeps what the page needs
    return report


def case_import_job_state(*, job: Job) -> dict[str, Any]:
    """What the import page shows: the report (once there is one), percent, finished or not."""
    report = ImportReport.from_dict(job.result) if job.result.get("file") else None
    error = job.error.splitlines()[0] if job.error else ""
    return {
        "job": job,
        "report": report,
        "percent": round(job.progress * 100),
        "finished": job.status in FINISHED,
        "error": error,
    }
