"""Thin Celery tasks: ids in, the service of the same name called."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings


@shared_task(name="active_learning.retrain_all", ignore_result=True)
def retrain_all() -> list[int]:
    """The scheduled full retrain (RETRAIN_CRON): one job per project."""
    from active_learning.services.retrain_requests import retrain_start
    from labeling.models import Project

    jobs = [
        retrain_start(project=p, reason="scheduled", automatic=True) for p in Project.objects.all()
    ]
    return [j.pk for j in jobs if j is not None]


@shared_task(
    name="active_learning.retrain_project",
    ignore_result=True,
    # The job row, not the broker, is the record: a lost message is resent by the tick.
    acks_late=False,
)
def retrain_project(job_id: int) -> dict[str, Any]:
    from active_learning.services.retrain import retrain_project as run
    from workbench.core.models import Job

    job = Job.objects.select_related("project").filter(pk=job_id).first()
    if job is None:
        return {"skipped": "no such job"}
    return run(job=job)


@shared_task(
    name="active_learning.embed_chunk",
    ignore_result=True,
    acks_late=True,  # idempotent: a rerun skips what is already embedded
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=3,
)
def embed_chunk(project_id: int, hashes: list[str], model_name: str | None = None) -> int:
    from active_learning.services.embeddings import embed_chunk as run
    from active_learning.services.embeddings import model_in_use
    from labeling.models import Project

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    with model_in_use(model_name):  # the sender's vectors (a message sent before: the default)
        return run(project=project, hashes=hashes)


@shared_task(
    name="active_learning.embed_project",
    ignore_result=True,
    # The job row is the record: a lost message is resent, a killed run rerun, by the tick.
    acks_late=False,
    # Outside the retrains' limit: a million texts take an hour per worker on the torch backend.
    soft_time_limit=settings.EMBED_TIME_LIMIT,
    time_limit=settings.EMBED_TIME_LIMIT + 300,
)
def embed_project(job_id: int) -> dict[str, Any] | None:
    from active_learning.services.embedding_jobs import embedding_run

    return embedding_run(job_id=job_id)


@shared_task(
    name="active_learning.dashboard_snapshot_refresh",
    ignore_result=True,
    acks_late=True,  # idempotent: a rerun finds the snapshot no longer due
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=3,
)
def dashboard_snapshot_refresh(project_id: int) -> dict[str, Any]:
    """The dashboard's expensive figures, off the request path (`services.dashboard`)."""
    from active_learning.services.dashboard import dashboard_snapshot_refresh as run
    from labeling.models import Project

    project = Project.objects.filter(pk=project_id).first()
    return {"skipped": "no such project"} if project is None else run(project=project)
