"""Exports as jobs: the page asks, a worker writes under WORKBENCH_DATA_DIR/exports/<job id>/.

`case_export_request` queues a job (sent on commit; the job row is the copy that counts);
`case_export_run` is what the Celery task calls: it empties the job's folder and exports from
scratch, so a rerun never builds on a killed run's partial file (partial files are hidden
temporary names the download never serves). The minute tick calls `export_jobs_recover`
(resend lost messages, rerun exports the reaper failed) and `export_files_expire` (delete files
older than EXPORT_EXPIRE_HOURS, and folders of failed runs).
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from labeling.models import Project
from labeling.services.exports import ExportOptions, ExportResult, case_export
from labeling.services.exports.manifest import manifest_path_for
from workbench.core.jobs import (
    FINISHED,
    job_claim,
    job_create,
    job_progress,
    job_progress_aside,
    job_running,
    job_send,
    job_set_result,
    jobs_recover,
)
from workbench.core.models import Job, JobKind, JobStatus

EXPORT_JOB_KIND = JobKind.CASE_EXPORT
RESEND_AFTER_SECONDS = 120
MAX_ATTEMPTS = 3
PROGRESS_SECONDS = 1.0
MSG_RERUN = "Its worker stopped answering; exporting again from the start (attempt {n})."
ERR_GIVEN_UP = "Its worker stopped answering {n} times; start the export again."


def export_root() -> Path:
    return Path(settings.WORKBENCH_DATA_DIR) / "exports"


def export_folder(job_id: int) -> Path:
    return export_root() / str(int(job_id))


@transaction.atomic
def case_export_request(
    *, project: Project, fmt: str, options: ExportOptions, actor: Any = None
) -> Job:
    """Queue an export of `project`; returns its job."""
    job = job_create(
        kind=EXPORT_JOB_KIND,
        project=project,
        params={
            "format": fmt,
            "options": options.to_json(),
            "actor_id": getattr(actor, "pk", None),
            "attempt": 1,
        },
    )
    transaction.on_commit(lambda: _send(job.pk))
    return job


def _send(job_id: int) -> bool:
    """Send the job to a worker; never raises (a broker that is down: the tick resends)."""
    from labeling.tasks import case_export_task  # tasks import services, not the reverse

    return job_send(job_id=job_id, task=case_export_task, queue=settings.DEFAULT_QUEUE)


class _JobProgress:
    """At most one progress write a second, from another connection: the export's own
    transaction is read-only (PostgreSQL) or a read snapshot (SQLite)."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.last = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_SECONDS:
            return
        self.last = now
        if connection.vendor == "sqlite" and connection.in_atomic_block:
            # Only a caller's transaction (a test's): the export's SQLite snapshot is no atomic
            # block, and no other connection could write past this one's lock.
            job_progress(job_id=self.job_id, progress=fraction, message=message)
            return
        job_progress_aside(job_id=self.job_id, progress=fraction, message=message)


def case_export_run(*, job_id: int) -> ExportResult | None:
    """Run a queued export job from scratch (idempotent: a job already started is left alone)."""
    job = job_claim(job_id=job_id, kind=EXPORT_JOB_KIND)
    if job is None:
        return None
    assert job.project is not None
    params = job.params
    actor = get_user_model().objects.filter(pk=params.get("actor_id")).first()
    fmt = str(params["format"])
    folder = export_folder(job.pk)
    shutil.rmtree(folder, ignore_errors=True)  # whatever a killed run left
    folder.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    path = folder / f"{job.project.slug}-{stamp}.{fmt}"
    with job_running(job, hand_back_on_stop=True):
        result = case_export(
            project=job.project,
            fmt=fmt,
            path=path,
            options=ExportOptions.from_json(params.get("options") or {}),
            actor=actor,
            progress=_JobProgress(job.pk),
        )
        expires = timezone.now() + timedelta(hours=float(settings.EXPORT_EXPIRE_HOURS))
        job_set_result(
            job_id=job.pk,
            result={
                "files": [p.name for p in result.files],
                "manifest": result.manifest_path.name,
                "rows": result.rows,
                "annotations": result.annotations,
                "sha256": result.sha256,
                "seconds": result.seconds,
                "expires_at": expires.isoformat(),
            },
            message=f"Exported {result.rows:,} cases in {result.seconds:.1f} s",
        )
    return result


def export_download_path(*, job: Job, name: str) -> Path | None:
    """The file `name` of a finished export job, when it is one of its files and still there."""
    result = job.result or {}
    allowed = [*result.get("files", []), result.get("manifest")]
    if job.status != JobStatus.SUCCEEDED or result.get("expired") or name not in allowed:
        return None
    path = export_folder(job.pk) / name
    return path if path.is_file() else None


def export_jobs_recover(*, now: datetime | None = None) -> dict[str, list[int]]:
    """Resend queued exports whose message was lost; rerun, from scratch and as the same job (the
    page follows it), exports the reaper failed, up to MAX_ATTEMPTS. Never raises."""
    rerun, resent = jobs_recover(
        kind=EXPORT_JOB_KIND,
        send=_send,
        before_rerun=lambda job_id: shutil.rmtree(export_folder(job_id), ignore_errors=True),
        max_attempts=MAX_ATTEMPTS,
        resend_after_seconds=RESEND_AFTER_SECONDS,
        rerun_message=MSG_RERUN,
        given_up_message=ERR_GIVEN_UP,
        now=now,
    )
    return {"exports_resent": resent, "exports_rerun": rerun}


def export_files_expire(*, now: datetime | None = None) -> list[int]:
    """Delete the files of exports finished more than EXPORT_EXPIRE_HOURS ago (the job says
    `expired`) and the folders of failed or vanished jobs; returns the jobs whose files went."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=float(settings.EXPORT_EXPIRE_HOURS))
    expired = []
    old = Job.objects.filter(
        kind=EXPORT_JOB_KIND, status=JobStatus.SUCCEEDED, finished_at__lt=cutoff
    ).only("pk", "result")
    for job in old:
        if (job.result or {}).get("expired"):  # not in SQL: a missing key is NULL, not False
            continue
        shutil.rmtree(export_folder(job.pk), ignore_errors=True)
        Job.objects.filter(pk=job.pk).update(result={**job.result, "expired": True})
        expired.append(job.pk)
    root = export_root()
    if root.is_dir():
        folders = {int(p.name): p for p in root.iterdir() if p.is_dir() and p.name.isdigit()}
        live = set(
            Job.objects.filter(pk__in=list(folders), kind=EXPORT_JOB_KIND)
            .exclude(status=JobStatus.FAILED)
            .values_list("pk", flat=True)
        )
        for job_id, folder in folders.items():
            if job_id not in live:
                shutil.rmtree(folder, ignore_errors=True)
    return expired


def case_export_job_state(*, job: Job) -> dict[str, Any]:
    """What the export page shows while it polls."""
    result = job.result or {}
    error = job.error.splitlines()[0] if job.error else ""
    ready = job.status == JobStatus.SUCCEEDED and not result.get("expired")
    return {
        "job": job,
        "result": result,
        "percent": round(job.progress * 100),
        "finished": job.status in FINISHED,
        "ready": ready,
        "expired": bool(result.get("expired")),
        "error": error,
        "files": result.get("files", []) if ready else [],
        "manifest": result.get("manifest") if ready else None,
    }


__all__ = [
    "EXPORT_JOB_KIND",
    "case_export_job_state",
    "case_export_request",
    "case_export_run",
    "export_download_path",
    "export_files_expire",
    "export_jobs_recover",
    "manifest_path_for",
]
