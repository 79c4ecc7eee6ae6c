"""Embedding as its own job: started by an import, progress per chunk, a killed run resumes
without encoding a stored text again, and a retrain never waits for it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from active_learning.models import Embedding
from active_learning.services import embedding_jobs, embeddings, retrain
from active_learning.services.embedding_jobs import (
    embedding_jobs_recover,
    embedding_run,
    embedding_start,
)
from active_learning.services.retrain_requests import retrain_request
from labeling.services.imports import case_import
from tests.factories import CaseFactory, ProjectFactory
from workbench.core.jobs import job_reap_stale
from workbench.core.models import Job, JobKind, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_chunks(settings, tmp_path, monkeypatch):
    """Chunks of 4 texts, no fan-out (this process does every chunk), a progress write for each."""
    settings.WORKBENCH_DATA_DIR = tmp_path
    settings.PIPELINE_FANOUT = False
    settings.EMBED_CHUNK_TEXTS = 4
    monkeypatch.setattr(embedding_jobs, "PROGRESS_SECONDS", 0.0)


def _cases(project, n: int) -> None:
    for i in range(n):
        CaseFactory(project=project, text=f"Merchant {i} sells item number {i} online.")


def _jobs(project, kind: str) -> list[Job]:
    return list(Job.objects.filter(project=project, kind=kind).order_by("pk"))


def test_an_import_queues_one_embedding_job_which_then_asks_for_a_retrain(
    tmp_path: Path, small_chunks, django_capture_on_commit_callbacks
) -> None:
    project = ProjectFactory()
    path = tmp_path / "cases.csv"
    path.write_text("id,text\nm1,Handmade mugs.\nm2,Online casino.\nm3,Espresso bar.\n")
    with django_capture_on_commit_callbacks(execute=True):
        assert case_import(project=project, path=path).created == 3
    [job] = _jobs(project, JobKind.EMBED)
    assert job.status == JobStatus.QUEUED and job.celery_task_id  # sent to the broker
    assert job.params["reason"] == "3 cases imported"
    assert embedding_start(project=project, reason="again") is None  # one pending at a time
    assert _jobs(project, JobKind.RETRAIN) == []  # the retrain waits for the vectors

    result = embedding_run(job_id=job.pk)
    assert result is not None and result["embedded"] == 3 and result["left"] == 0
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.message.startswith("Embedded 3 texts")
    [retrain_job] = _jobs(project, JobKind.RETRAIN)
    assert retrain_job.params["reason"] == "3 texts embedded"
    assert embedding_run(job_id=job.pk) is None  # a second message for it does nothing


def test_progress_rises_chunk_by_chunk_with_rate_and_time_left(small_chunks, monkeypatch) -> None:
    project = ProjectFactory()
    _cases(project, 14)
    seen: list[tuple[float, str]] = []
    real = embedding_jobs.job_progress

    def spy(*, job_id: int, progress: float, message: str | None = None) -> None:
        real(job_id=job_id, progress=progress, message=message)
        row = Job.objects.get(pk=job_id)  # what the page reads
        seen.append((row.progress, row.message))

    monkeypatch.setattr(embedding_jobs, "job_progress", spy)
    job = embedding_start(project=project, reason="test")
    embedding_run(job_id=job.pk)
    chunks = [(p, m) for p, m in seen if "texts/s" in m]
    assert [round(p, 3) for p, _ in chunks] == [round(x / 14, 3) for x in (4, 8, 12, 14)]
    assert chunks[0][1].startswith("4/14 texts, ") and "left" in chunks[0][1]
    assert chunks[-1][1].startswith("14/14 texts, ") and "left" not in chunks[-1][1]


def test_a_killed_run_resumes_without_encoding_stored_chunks_again(
    small_chunks, monkeypatch, settings
) -> None:
    project = ProjectFactory()
    _cases(project, 12)
    encoder = embeddings.encoder_get()
    before = encoder.n_encoded_
    real = embeddings.embed_chunk
    calls = {"n": 0}

    def crash_on_third(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("worker killed")  # not an Exception: nothing handles it on the way
        return real(**kwargs)

    monkeypatch.setattr(embeddings, "embed_chunk", crash_on_third)
    job = embedding_start(project=project, reason="test")
    with pytest.raises(SystemExit):
        embedding_run(job_id=job.pk)
    assert Embedding.objects.count() == 8  # two chunks were stored as they finished
    assert encoder.n_encoded_ - before == 8
    # What a SIGKILL leaves: running, heartbeat silent; the reaper fails it, the tick reruns it.
    silent = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS * 2)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=silent)
    assert job_reap_stale() == [job.pk]
    recovered = embedding_jobs_recover()
    assert recovered["embeddings_rerun"] == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.params["attempt"] == 2

    monkeypatch.setattr(embeddings, "embed_chunk", real)
    result = embedding_run(job_id=job.pk)
    assert result is not None and result["embedded"] == 4 and result["left"] == 0
    assert encoder.n_encoded_ - before == 12  # the 8 stored texts were not encoded again
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED


def test_a_retrain_leaves_many_new_texts_to_the_embedding_job(small_chunks, settings) -> None:
    settings.EMBED_INLINE_MAX = 5
    project = ProjectFactory()
    _cases(project, 9)
    job = retrain_request(project=project, reason="test")
    ctx = retrain.ChainContext(project=project, job=job)
    retrain.run_embed(ctx, lambda fraction, message: None)
    assert ctx.result == {"embedded": 0, "left_to_embedding_job": 9}
    assert Embedding.objects.count() == 0  # the retrain did not wait for them
    [embed_job] = _jobs(project, JobKind.EMBED)
    assert embed_job.status == JobStatus.QUEUED

    # A few new texts, with no embedding job pending, are embedded by the retrain itself.
    embed_job.delete()
    other = ProjectFactory()
    _cases(other, 3)
    ctx = retrain.ChainContext(project=other, job=retrain_request(project=other, reason="t"))
    retrain.run_embed(ctx, lambda fraction, message: None)
    assert ctx.result["embedded"] == 3 and _jobs(other, JobKind.EMBED) == []
