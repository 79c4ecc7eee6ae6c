"""The pipeline through a real Celery worker on PostgreSQL and Redis.

Each test starts its own worker (solo pool, test heartbeat settings) against pytest's database
and calls the beat task's due-check directly rather than waiting for beat. Embeddings of the
generated merchants are computed once per session and inserted per test, so tests measure the
pipeline rather than MiniLM; the fan-out test alone embeds its cases through the workers.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from active_learning.models import Embedding, LabelIssue, ModelStatus, ModelVersion, Prediction
from active_learning.services.embeddings import matrix_dir, model_name_current
from active_learning.services.queue_probe import PROBE
from active_learning.services.queue_refresh import SIMILAR
from active_learning.services.retrain import retrain_due_check
from labeling.models import Case, Project, QueueItem, QueueStatus, Split
from tests.conftest import redis_url
from tests.pipeline import generated_project, label_truthfully
from tests.worker import celery_worker, service_env
from workbench.core.models import Job, JobStatus

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

N_CASES = 1000
SEED = 7


@pytest.fixture(scope="session")
def generated_vectors() -> dict[str, np.ndarray]:
    """MiniLM vectors of the generated merchants' texts, keyed by content hash (once a session)."""
    from active_learning.ml.embeddings import SentenceTransformerEncoder
    from active_learning.ml.hashing import content_hash
    from labeling.synthetic import generate

    texts = [r.text for r in generate(N_CASES, seed=SEED)]
    vectors = SentenceTransformerEncoder(num_threads=1).encode(texts)
    return {content_hash(t): v for t, v in zip(texts, vectors, strict=True)}


@pytest.fixture
def pipeline(settings, tmp_path: Path, generated_vectors):
    """Settings shared with the worker, and a factory for workers."""
    data = tmp_path / "data"
    settings.WORKBENCH_DATA_DIR = data
    settings.JOB_HEARTBEAT_SECONDS = 1
    settings.JOB_STALE_SECONDS = 5

    def project(*, n: int = N_CASES, vectors: bool = True, **kwargs) -> Project:
        created = generated_project(n=n, seed=SEED, **kwargs)
        if vectors:
            Embedding.objects.bulk_create(
                Embedding(model_name=model_name_current(), content_hash=h, dim=v.shape[0],
                          vector=v.astype("<f4").tobytes())
                for h, v in generated_vectors.items()
            )  # fmt: skip
        return created

    def worker(name: str, queues: str | None = None, pool: str = "solo", **extra: str):
        from django.db import connection

        db = connection.settings_dict
        env = service_env(
            DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            CELERY_BROKER_URL=redis_url(),
            WORKBENCH_DATA_DIR=str(data),
            WORKBENCH_VAR_DIR=str(tmp_path / "var"),
            JOB_HEARTBEAT_SECONDS="1",
            JOB_STALE_SECONDS="5",
            **extra,
        )
        return celery_worker(env, tmp_path / f"{name}.log", queues=queues, pool=pool)

    project.worker = worker  # type: ignore[attr-defined]
    return project


def _wait_job(job_id: int, timeout: float = 150) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            assert job.status == JobStatus.SUCCEEDED, job.error or job.message
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {Job.objects.get(pk=job_id).message}")


def _due(project: Project, n: int | None = None) -> None:
    Project.objects.filter(pk=project.pk).update(
        labels_since_training=n if n is not None else project.retrain_after_n
    )


def _retrain_now(project: Project) -> Job:
    _due(project)
    started = retrain_due_check()["started"]
    assert len(started) == 1, started
    return _wait_job(started[0])


def _cases(project: Project, split: str, n: int) -> list[Case]:
    return list(
        Case.objects.filter(project=project, split=split)
        .select_related("synthetic_truth__true_label")
        .order_by("id")[:n]
    )


def test_analyst_only_champion_never_trains_on_evaluation_cases(pipeline) -> None:
    """given_label_weight=0 + 100 labels: a champion with metrics, no eval case in its snapshot,
    and a queue ordered by its scores carrying its version."""
    project = pipeline(given_label_weight=0.0, evaluation_fraction=0.2, strategy="margin",
                       retrain_after_n=50, batch_size=10)  # fmt: skip
    label_truthfully(project=project, cases=_cases(project, Split.POOL, 100))
    label_truthfully(project=project, cases=_cases(project, Split.EVAL, 60))
    with pipeline.worker("w1"):
        _retrain_now(project)
    champion = ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION)
    assert champion.n_train == 100 and champion.n_eval == 60
    assert 0 < champion.metrics["macro_f1"] <= 1 and "ece" in champion.metrics
    eval_ids = set(
        Case.objects.filter(project=project, split=Split.EVAL).values_list("pk", flat=True)
    )
    snapshot = set(champion.snapshot_case_ids)
    assert len(snapshot) == 100 and not snapshot & eval_ids
    assert not set(np.load(champion.params["snapshot_ids_file"]).tolist()) & eval_ids

    items = list(
        QueueItem.objects.filter(project=project, status=QueueStatus.OPEN, kind="pool").order_by(
            "-priority"
        )
    )
    assert len(items) >= 40 and {i.model_version_id for i in items} == {champion.pk}
    # The pool probe's share (evaluation evidence is short) is drawn at random, spread among them.
    items = [i for i in items if PROBE not in i.reason["details"]]
    uncertainty = dict(
        Prediction.objects.filter(model_version=champion).values_list("case_id", "uncertainty")
    )
    served = [uncertainty[i.case_id] for i in items]
    assert served == sorted(served, reverse=True), "margin queue not ordered by champion scores"
    assert all(i.reason["strategy"] == "margin" and len(i.reason["class_ids"]) == 2 for i in items)
    assert all(len(i.similar_cases) == SIMILAR for i in items)


def test_burst_of_labels_gives_exactly_one_retrain(pipeline) -> None:
    project = pipeline(given_label_weight=1.0, retrain_after_n=50)
    _due(project, 50 + 50)  # N reached, then a burst of 50 more before the worker starts
    first = retrain_due_check()["started"]
    again = [retrain_due_check()["started"] for _ in range(3)]
    assert len(first) == 1 and again == [[], [], []]
    with pipeline.worker("w1"):
        _wait_job(first[0])
    assert retrain_due_check()["started"] == []
    assert Job.objects.filter(project=project, kind="retrain").count() == 1
    assert Project.objects.get(pk=project.pk).labels_since_training == 0


def test_worker_killed_during_training_keeps_champion_and_is_reaped(pipeline) -> None:
    project = pipeline(given_label_weight=1.0, retrain_after_n=50)
    with pipeline.worker("w1"):
        _retrain_now(project)
    champion = ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION)
    models = Path(champion.artifact_path).parent
    before = sorted(p.name for p in models.iterdir())

    _due(project)
    job_id = retrain_due_check()["started"][0]
    with pipeline.worker("doomed", WORKBENCH_FAULTS="train=60") as proc:
        deadline = time.monotonic() + 60
        training = ModelVersion.objects.filter(project=project, status=ModelStatus.TRAINING)
        while not training.exists():
            assert time.monotonic() < deadline, Job.objects.get(pk=job_id).message
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    killed_at = time.monotonic()

    assert ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION) == champion
    after = sorted(p.name for p in models.iterdir())
    assert not [n for n in after if n.endswith(".skops") and n not in before], after
    assert not [n for n in after if n.endswith(".tmp")], after
    while Job.objects.get(pk=job_id).status == JobStatus.RUNNING:
        assert time.monotonic() - killed_at < 10, "stale job not reaped within 10 s"
        time.sleep(0.5)
        retrain_due_check()
    assert "No heartbeat" in Job.objects.get(pk=job_id).error

    # Its labels were not consumed: the due-check that reaped it (or the next) retrains.
    retrain_due_check()
    started = list(Job.objects.filter(project=project, kind="retrain", pk__gt=job_id))
    assert len(started) == 1
    with pipeline.worker("w2"):
        _wait_job(started[0].pk)
    assert ModelVersion.objects.filter(project=project, status=ModelStatus.FAILED).count() == 1


def test_challenger_on_corrupted_labels_is_not_promoted(pipeline) -> None:
    project = pipeline(given_label_weight=0.0, evaluation_fraction=0.35, retrain_after_n=50)
    eval_cases = list(Case.objects.filter(project=project, split=Split.EVAL).select_related(
        "synthetic_truth__true_label"))  # fmt: skip
    label_truthfully(project=project, cases=eval_cases)
    pool = _cases(project, Split.POOL, 300)
    label_truthfully(project=project, cases=pool)
    with pipeline.worker("w1"):
        _retrain_now(project)
        v1 = ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION)
        label_truthfully(project=project, cases=pool, corrupt=True)
        _retrain_now(project)
    v2 = ModelVersion.objects.get(project=project, number=v1.number + 1)
    assert v2.status == ModelStatus.READY
    assert ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION) == v1
    assert v2.decision["promote"] is False and "macro-F1" in v2.decision_reason, v2.decision_reason


def test_label_issue_scores_rank_injected_flips_first(pipeline) -> None:
    project = pipeline(given_label_weight=1.0, retrain_after_n=50)
    with pipeline.worker("w1"):
        _retrain_now(project)
    rows = list(
        LabelIssue.objects.filter(project=project).values_list(
            "score", "case__given_label_id", "case__synthetic_truth__true_label_id"
        )
    )
    assert len(rows) > 800
    scores = np.array([r[0] for r in rows])
    flipped = np.array([r[1] != r[2] for r in rows])
    auroc = roc_auc_score(flipped, scores)
    print(f"label-issue AUROC on the demo generator (seed {SEED}): {auroc:.3f}")
    assert auroc >= 0.8, auroc  # measured 2026-11-29: see the README's pipeline figures


def test_deleted_matrix_file_is_rebuilt_by_the_next_scoring(pipeline) -> None:
    project = pipeline(given_label_weight=1.0, retrain_after_n=50)
    with pipeline.worker("w1"):
        _retrain_now(project)
        vectors = matrix_dir(model_name_current()) / "vectors.f32"
        assert vectors.exists()
        vectors.unlink()
        job = _retrain_now(project)
    assert vectors.exists() and vectors.stat().st_size == N_CASES * 384 * 4
    champion = ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION)
    assert Prediction.objects.filter(model_version=champion).count() == N_CASES
    assert job.result["embedded"] == 0


def test_a_killed_manual_retrain_is_requested_again_and_followed_to_the_end(pipeline) -> None:
    """No label is due: only the reaped job itself says a retrain was wanted. `manage.py
    retrain --wait` then follows the retry through a real worker to its end."""
    import io

    from django.core.management import call_command

    from active_learning.services.retrain_requests import retrain_start

    project = pipeline(given_label_weight=1.0, retrain_after_n=50)
    job = retrain_start(project=project, reason="manual")
    assert job is not None
    with pipeline.worker("doomed", WORKBENCH_FAULTS="train=60") as proc:
        deadline = time.monotonic() + 90
        training = ModelVersion.objects.filter(project=project, status=ModelStatus.TRAINING)
        while not training.exists():
            assert time.monotonic() < deadline, Job.objects.get(pk=job.pk).message
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    killed_at = time.monotonic()
    while Job.objects.get(pk=job.pk).status == JobStatus.RUNNING:
        assert time.monotonic() - killed_at < 15, "stale job not reaped within 15 s"
        time.sleep(0.5)
        retrain_due_check()
    retry = Job.objects.get(project=project, kind="retrain", params__retry_of=job.pk)
    assert retry.params["reason"] == "manual" and retry.status == JobStatus.QUEUED

    out = io.StringIO()
    with pipeline.worker("w2"):
        call_command("retrain", project.slug, "--wait", "--start-timeout", "60", stdout=out)
    assert f"job #{retry.pk}" in out.getvalue().splitlines()[0]
    assert f"Job #{retry.pk} succeeded" in out.getvalue()
    assert Job.objects.filter(project=project, kind="retrain").count() == 2
    assert ModelVersion.objects.filter(project=project, status=ModelStatus.CHAMPION).exists()


def _tasks_in(log: Path, task: str) -> list[str]:
    """What the worker logged of `task`: "received", or the return value of each success."""
    pattern = rf"Task {re.escape(task)}\[[^\]]+\] (received|succeeded in [\d.]+s: (\S+))"
    return [m[2] or m[1] for m in re.finditer(pattern, log.read_text(errors="replace"))]


def test_embedding_fans_out_over_a_celery_group(pipeline, tmp_path: Path) -> None:
    """With nothing embedded yet, the retrain sends its chunks as a Celery group: the idle second
    worker embeds one chunk while the retrain's worker works through the other."""
    project = pipeline(n=600, vectors=False, given_label_weight=1.0, retrain_after_n=50)
    distinct = Case.objects.filter(project=project).values("content_hash").distinct().count()
    assert distinct > 512 and not Embedding.objects.exists()  # two chunks (EMBED_CHUNK_TEXTS = 512)
    with pipeline.worker("w1"), pipeline.worker("w2"):
        job = _retrain_now(project)
    assert job.celery_task_id
    logs = {name: tmp_path / f"{name}.log" for name in ("w1", "w2")}
    # Which worker ran this job (a stale message of an earlier test may have reached either).
    ran = [n for n, log in logs.items() if f"[{job.celery_task_id}] received" in log.read_text()]
    assert len(ran) == 1, ran
    helper = logs["w2" if ran == ["w1"] else "w1"]
    helped = [int(v) for v in _tasks_in(helper, "active_learning.embed_chunk") if v.isdigit()]
    assert helped and sum(helped) > 0, helper.read_text(errors="replace")[-3000:]
    assert job.result["embedded"] == distinct
    assert Embedding.objects.filter(model_name=model_name_current()).count() == distinct


def test_a_small_import_runs_while_a_retrain_holds_the_worker(pipeline, tmp_path: Path) -> None:
    """Short jobs have a queue and a worker of their own: a 3-row import is done in seconds
    while a retrain holds the other worker, instead of waiting for it to end."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from active_learning.services.retrain_requests import retrain_start
    from labeling.models import LabelClass
    from labeling.services.imports import Columns
    from labeling.services.imports.jobs import case_import_upload

    project = pipeline(given_label_weight=1.0, retrain_after_n=50)
    label = LabelClass.objects.filter(project=project).order_by("order").first()
    with pipeline.worker("long", WORKBENCH_FAULTS="train=45"), pipeline.worker("short", "short"):
        retrain = retrain_start(project=project, reason="manual")
        assert retrain is not None
        deadline = time.monotonic() + 90
        training = ModelVersion.objects.filter(project=project, status=ModelStatus.TRAINING)
        while not training.exists():  # the retrain now holds the long worker for 45 s
            assert time.monotonic() < deadline, Job.objects.get(pk=retrain.pk).message
            time.sleep(0.2)
        rows = "".join(f"late-{i},Hand-made candles number {i},{label.name}\n" for i in range(3))
        upload = SimpleUploadedFile("late.csv", f"id,text,label\n{rows}".encode())
        started = time.monotonic()
        job = case_import_upload(project=project, upload=upload, columns=Columns())
        while Job.objects.get(pk=job.pk).status != JobStatus.SUCCEEDED:
            job.refresh_from_db()
            assert job.status not in (JobStatus.FAILED, JobStatus.CANCELLED), job.error
            assert time.monotonic() - started < 25, "the import waited behind the retrain"
            time.sleep(0.2)
        assert Job.objects.get(pk=retrain.pk).status == JobStatus.RUNNING
        assert Case.objects.filter(project=project, external_id__startswith="late-").count() == 3


def test_an_embedding_job_killed_on_its_worker_resumes_on_the_next_then_retrains(
    pipeline, tmp_path: Path
) -> None:
    """Cases without vectors get an embedding job (as an import queues it). Its worker is
    SIGKILLed after the first chunk is stored; the tick reaps it and reruns the same job, which
    encodes only what was not stored, then asks for the retrain."""
    from active_learning.services.embedding_jobs import embedding_start
    from workbench.tick import minute_tick

    project = pipeline(n=300, vectors=False, given_label_weight=1.0, retrain_after_n=50)
    distinct = Case.objects.filter(project=project).values("content_hash").distinct().count()
    assert distinct > 2 * 100  # three chunks
    job = embedding_start(project=project, reason="300 cases imported")
    chunks = {"EMBED_CHUNK_TEXTS": "100"}
    with pipeline.worker("doomed", WORKBENCH_FAULTS="embed=4", **chunks) as proc:
        deadline = time.monotonic() + 90
        while Embedding.objects.count() < 100:  # the first chunk is stored as it finishes
            assert time.monotonic() < deadline, Job.objects.get(pk=job.pk).message
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    stored = Embedding.objects.count()
    assert stored < distinct
    running = Job.objects.get(pk=job.pk)
    assert running.status == JobStatus.RUNNING and running.progress > 0  # per chunk, not at end
    assert "texts/s" in running.message
    deadline = time.monotonic() + 30
    while Job.objects.get(pk=job.pk).status != JobStatus.QUEUED:  # reaped, then rerun
        assert time.monotonic() < deadline, Job.objects.get(pk=job.pk).status
        time.sleep(0.5)
        minute_tick()
    with pipeline.worker("w2", **chunks):
        done = _wait_job(job.pk)
        assert done.params["attempt"] == 2
    # It asked for the retrain that trains on the vectors (other tests follow a retrain through).
    retrain = Job.objects.get(project=project, kind="retrain")
    assert retrain.params["reason"] == f"{done.result['embedded']:,} texts embedded"
    # The killed worker's group chunks still in the queue may reach w2 before the rerun: all
    # that w2 encoded, by the job or by chunks, is exactly what was not stored.
    helped = [int(v) for v in _tasks_in(tmp_path / "w2.log", "active_learning.embed_chunk")
              if v.isdigit()]  # fmt: skip
    assert done.result["embedded"] + sum(helped) == distinct - stored
    assert Embedding.objects.filter(model_name=model_name_current()).count() == distinct
