"""Guards of the pipeline: new classes, excluded labels, repeated failures, reaped runs."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from active_learning.ml.classifiers import make_classifier
from active_learning.models import Embedding
from active_learning.selectors import training_set
from active_learning.services.retrain import (
    ERR_REAPED,
    PIPELINE,
    _step_reporter,
    retrain_request,
)
from active_learning.services.training import evaluate_model
from labeling.models import ResolvedLabel, Split
from tests.factories import CaseFactory, LabelClassFactory, ProjectFactory
from workbench.core.models import Job, JobStatus

pytestmark = pytest.mark.django_db


def _embedded_cases(project, labels, n, rng, split=Split.EVAL):
    cases = []
    for i in range(n):
        label = labels[i % len(labels)]
        case = CaseFactory(project=project, split=split, given_label=label)
        vector = rng.normal(size=8).astype("<f4") + 3 * labels.index(label)
        Embedding.objects.create(
            model_name="all-MiniLM-L6-v2", content_hash=case.content_hash, dim=8,
            vector=(vector / np.linalg.norm(vector)).astype("<f4").tobytes(),
        )  # fmt: skip
        ResolvedLabel.objects.create(case=case, label=label, source="annotation")
        cases.append(case)
    return cases


def test_a_class_added_after_training_does_not_break_evaluation(settings, tmp_path) -> None:
    settings.WORKBENCH_DATA_DIR = tmp_path
    project = ProjectFactory()
    a, b = LabelClassFactory(project=project), LabelClassFactory(project=project)
    rng = np.random.default_rng(0)
    _embedded_cases(project, [a, b], 40, rng)
    X = rng.normal(size=(40, 8))
    model = make_classifier(classes=[a.pk, b.pk], calibration=None, C=1.0)
    model.fit(X, np.array([a.pk, b.pk] * 20))
    c = LabelClassFactory(project=project)  # e.g. created by an import into an open project
    report = evaluate_model(model=model, project=project, classes=[a, b, c])
    assert report.n_samples == 40
    assert [m.name for m in report.per_class] == [str(a.pk), str(b.pk), str(c.pk)]
    assert report.eval_labels_per_class == {str(a.pk): 20, str(b.pk): 20, str(c.pk): 0}


def test_an_excluded_case_leaves_training_whole() -> None:
    project = ProjectFactory(given_label_weight=1.0)
    a = LabelClassFactory(project=project)
    kept = CaseFactory(project=project, given_label=a)
    excluded = CaseFactory(project=project, given_label=a)
    ResolvedLabel.objects.create(case=excluded, label=a, source="annotation", excluded=True)
    assert training_set(project=project).case_ids.tolist() == [kept.pk]


def test_automatic_retrains_back_off_after_repeated_failures() -> None:
    project = ProjectFactory()
    for _ in range(3):
        Job.objects.create(kind="retrain", project=project, status=JobStatus.FAILED)
    assert retrain_request(project=project, reason="auto", automatic=True) is None
    Job.objects.filter(project=project).update(created_at=timezone.now() - timedelta(hours=1))
    assert retrain_request(project=project, reason="auto", automatic=True) is not None


def test_an_admin_retrain_goes_through_despite_failures() -> None:
    project = ProjectFactory()
    for _ in range(3):
        Job.objects.create(kind="retrain", project=project, status=JobStatus.FAILED)
    assert retrain_request(project=project, reason="manual") is not None


def test_a_reaped_run_stops_at_its_next_step() -> None:
    job = Job.objects.create(kind="retrain", project=ProjectFactory(), status=JobStatus.RUNNING)
    _step_reporter(job, PIPELINE[1], 0.25)(0.5, "fine")  # label issues
    job.refresh_from_db()
    assert (
        job.progress == pytest.approx(0.25 + 0.5 * PIPELINE[1].share)
        and job.message == "label issues: fine"
    )
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED)
    with pytest.raises(RuntimeError, match=re.escape(ERR_REAPED)):
        _step_reporter(job, PIPELINE[2], 0.5)


def test_the_pipeline_declares_its_steps_in_order_and_fills_the_bar() -> None:
    """Embed, detect, consensus, review items, train, promote, score, refresh, the dashboard's
    snapshot: shares fill the bar."""
    assert [s.name for s in PIPELINE] == [
        "embed", "label issues", "consensus", "review items", "train", "promote", "score", "refresh queue",
        "dashboard",
    ]  # fmt: skip
    assert sum(s.share for s in PIPELINE) == pytest.approx(1.0)
