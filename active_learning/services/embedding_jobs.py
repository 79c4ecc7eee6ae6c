"""Embedding as its own job: an import starts it, every worker shares its chunks, and a retrain
never waits for it.

`embedding_start` queues one job per project (None while one is queued or running).
`embedding_run`, what the Celery task calls, embeds the project's texts that have no vector yet
with the project's chosen backend (first exporting or distilling that backend's encoder, once
per installation), in chunks shared with the other workers (`services.embeddings.embed_missing`),
reporting progress after every chunk with the rate and the time left. Each chunk is stored as it
finishes, so a killed or stopped run resumes where it stopped and never encodes a stored text
again. When it ends it requests a retrain, which trains on and scores the new vectors; after a
backend change, once every case has the new vectors, the project's models move to them.

The minute tick reruns runs the reaper failed, as the same job, and resends lost messages
(`embedding_jobs_recover`). The task's time limit is EMBED_TIME_LIMIT, not the retrain's: a
million texts take an hour per worker on the torch backend.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction

from active_learning.services import embeddings
from active_learning.services.retrain_requests import retrain_start
from labeling.models import Project
from workbench.core.jobs import (
    PENDING,
    job_claim,
    job_create,
    job_progress,
    job_running,
    job_send,
    job_set_result,
    jobs_recover,
)
from workbench.core.models import Job, JobKind

log = logging.getLogger(__name__)

KIND = JobKind.EMBED
PROGRESS_SECONDS = 1.0


def embedding_pending(*, project: Project) -> Job | None:
    """The project's queued or running embedding job, if any."""
    return Job.objects.filter(project_id=project.pk, kind=KIND, status__in=PENDING).first()


def embedding_start(*, project: Project, reason: str) -> Job | None:
    """Queue an embedding job for `project` (sent after commit); None when one is pending."""
    with transaction.atomic():
        # Serializes two requests of one project (an import and a retrain, say).
        Project.objects.select_for_update(no_key=True).filter(pk=project.pk).values_list(
            "pk"
        ).first()
        if embedding_pending(project=project) is not None:
            return None
        job = job_create(kind=KIND, project=project, params={"reason": reason, "attempt": 1})
        transaction.on_commit(lambda: _send(job.pk))
    return job


def _send(job_id: int) -> bool:
    from active_learning.tasks import embed_project  # tasks import services, not the reverse

    return job_send(job_id=job_id, task=embed_project, queue=settings.DEFAULT_QUEUE)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


class ChunkProgress:
    """`progress(done, total)` for `embed_missing`, written to the job at most once a second
    (and always at the end) as "12,288/100,000 texts, 410 texts/s, about 4 min left"."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_SECONDS and done < total:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-6)
        left = f", about {_duration((total - done) / rate)} left" if 0 < done < total else ""
        job_progress(
            job_id=self.job_id,
            progress=done / max(1, total),
            message=f"{done:,}/{total:,} texts, {rate:,.0f} texts/s{left}",
        )


class _PrepareProgress:
    """The one-off export or distillation of a backend's encoder, as the job's progress."""

    def __init__(self, job_id: int, model_name: str) -> None:
        self.job_id = job_id
        self.what = f"preparing the encoder {model_name} (once per installation)"

    def __call__(self, done: int, total: int) -> None:
        job_progress(
            job_id=self.job_id,
            progress=0.0,
            message=f"{self.what}: {100 * done // max(1, total)}%",
        )


def embedding_run(*, job_id: int) -> dict[str, Any] | None:
    """Run a queued embedding job (idempotent: a job already started elsewhere is left alone)."""
    job = job_claim(job_id=job_id, kind=KIND)
    if job is None:
        return None
    project = job.project
    assert project is not None
    model_name = embeddings.model_name_selected(project)
    with job_running(job, hand_back_on_stop=True), embeddings.model_in_use(model_name):
        embeddings.encoder_prepare(model_name, progress=_PrepareProgress(job.pk, model_name))
        missing = embeddings.hashes_missing(project=project, model_name=model_name)
        job_progress(job_id=job.pk, progress=0.0, message=f"{len(missing):,} texts to embed")
        started = time.monotonic()
        embedded = embeddings.embed_missing(
            project=project,
            hashes=missing,
            progress=ChunkProgress(job.pk),
            wait_seconds=float(settings.EMBED_TIME_LIMIT),
        )
        left = len(embeddings.hashes_missing(project=project, model_name=model_name))
        # Readers then find the matrix file current instead of each appending to it.
        embeddings.matrix_sync(model_name=model_name)
        seconds = time.monotonic() - started
        result = {
            "model": model_name,
            "embedded": embedded - left,
            "left": left,
            "seconds": round(seconds, 1),
            "texts_per_second": round((embedded - left) / max(seconds, 1e-6), 1),
        }
        message = f"Embedded {embedded - left:,} texts in {_duration(seconds)}"
        if left:
            message += f"; {left:,} still without a vector (another run picks them up)"
        if not left and model_name != embeddings.model_name_for(project):
            # Every case has the new backend's vectors: the next model trains on them (the
            # champion keeps its own until that one replaces it).
            Project.objects.filter(pk=project.pk).update(embedding_model=model_name)
            result["switched_to"] = model_name
            message += f"; the next model trains on {model_name}"
        job_set_result(job_id=job.pk, result=result, message=message)
    reason = f"{result['embedded']:,} texts embedded"
    if "switched_to" in result:
        reason = f"vectors of the new embedding backend are ready ({reason})"
    retrain_start(project=project, reason=reason, automatic=True)
    return result


def embedding_jobs_recover() -> dict[str, list[int]]:
    """The tick's part: rerun embedding jobs the reaper failed (they resume: stored chunks are
    never encoded again) and resend lost messages."""
    rerun, resent = jobs_recover(kind=KIND, send=_send)
    return {"embeddings_rerun": rerun, "embeddings_resent": resent}
