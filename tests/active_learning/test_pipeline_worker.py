"""The pipeline through a real Celery worker on PostgreSQL and Redis.

Each test starts its own worker (solo pool, test heartbeat settings) against pytest's database
and calls the beat task's due-check directly rather than waiting for beat. Embeddings of the
generated merchants are computed once per session and inserted per test, so tests measure the
pipeline rather than MiniLM.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from active_learning.models import Embedding, LabelIssue, ModelStatus, ModelVersion, Prediction
from active_learning.services.embeddings import matrix_dir, model_name_current
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

    def project(**kwargs) -> Project:
        created = generated_project(n=N_CASES, seed=SEED, **kwargs)
        Embedding.objects.bulk_create(
            Embedding(model_name=model_name_current(), content_hash=h, dim=v.shape[0],
                      vector=v.astype("<f4").tobytes())
            for h, v in generated_vectors.items()
        )  # fmt: skip
        return created

    def worker(name: str, pool: str = "solo", **extra: str):
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
        return celery_worker(env, tmp_path / f"{name}.log", pool=pool)

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
