"""Imports from the upload page: the file is streamed to WORKBENCH_DATA_DIR, then a Job runs it.

`case_import_upload` stores the upload and queues the job (on commit); `case_import_run` is what
the Celery task calls; `case_import_job_state` is what the page shows while it polls.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction

from active_learning.models import Job, JobStatus
from active_learning.services.jobs import job_create, job_progress, job_running, job_set_result
from labeling.models import Project
from labeling.services.imports import Columns, ImportReport, case_import

IMPORT_JOB_KIND = "case_import"
PROGRESS_SECONDS = 1.0
# Share of the bar each phase fills: validation first, then the writes.
_PHASES = {"validate": (0.0, 0.5, "Validating"), "write": (0.5, 0.45, "Writing")}
_PHASES["update"] = (0.95, 0.05, "Updating")
FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


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
    file_name = Path(upload.name or "upload").name
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
            "columns": {"id": columns.id, "text": columns.text, "label": columns.label},
            "update": update,
            "actor_id": getattr(actor, "pk", None),
        },
    )
    from labeling.tasks import case_import_task  # tasks import services, not the reverse

    transaction.on_commit(lambda: case_import_task.delay(job.pk))
    return job


def _post(job_id: int, progress: float, message: str) -> None:
    try:
        job_progress(job_id=job_id, progress=progress, message=message)
    finally:
        connection.close()  # this thread's own connection


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
            thread = threading.Thread(target=_post, args=(self.job_id, value, message))
            thread.start()
            thread.join(timeout=5)


def case_import_run(*, job_id: int) -> ImportReport | None:
    """Run a queued import job (idempotent: a job already started is left alone)."""
    job = (
        Job.objects.filter(pk=job_id, kind=IMPORT_JOB_KIND, status=JobStatus.QUEUED)
        .select_related("project")
        .first()
    )
    if job is None or job.project is None:
        return None
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
