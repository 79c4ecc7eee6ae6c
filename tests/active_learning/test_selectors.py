"""The evaluation split never trains (DESIGN "The evaluation split never trains anything"):
no evaluation case, by given or analyst label, reviewed or not, reaches a training set, a
detection set or a training snapshot; evaluation labels are analysts' labels of eval cases.
Reviewers' decisions train pool cases at full weight; excluded cases leave every set."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from active_learning.selectors import (
    decided_case_ids,
    detection_set,
    evaluation_set,
    training_set,
)
from active_learning.services import training
from labeling.models import Case, QueueItem, QueueKind, ResolutionSource, ResolvedLabel, Split
from labeling.services.annotations import Verdict, review_submit
from tests.factories import AnalystFactory, CaseFactory, LabelClassFactory, ProjectFactory
from tests.pipeline import store_vectors

pytestmark = pytest.mark.django_db

ANALYST = (
    ResolutionSource.ANNOTATION,
    ResolutionSource.CONSENSUS,
    ResolutionSource.REVIEW,
    ResolutionSource.ADJUDICATED,
)


def _world(given_label_weight: float):
    """Pool and eval cases of every kind: given label only, each analyst source, a resolution
    of source `given`, doubtful, excluded. Returns (project, {kind: case} per split)."""
    project = ProjectFactory(given_label_weight=given_label_weight)
    a, b = LabelClassFactory(project=project), LabelClassFactory(project=project)
    cases: dict[str, dict[str, object]] = {Split.POOL: {}, Split.EVAL: {}}
    for split in (Split.POOL, Split.EVAL):
        made = cases[split]
        made["given"] = CaseFactory(project=project, split=split, given_label=a)
        made["unlabelled"] = CaseFactory(project=project, split=split, given_label=None)
        for source in ANALYST:
            case = CaseFactory(project=project, split=split, given_label=a)
            ResolvedLabel.objects.create(case=case, label=b, source=source)
            made[source] = case
        made["analyst, no given"] = CaseFactory(project=project, split=split, given_label=None)
        ResolvedLabel.objects.create(case=made["analyst, no given"], label=b, source="annotation")
        made["resolved as given"] = CaseFactory(project=project, split=split, given_label=a)
        ResolvedLabel.objects.create(case=made["resolved as given"], label=a, source="given")
        made["doubtful given"] = CaseFactory(project=project, split=split, given_label=a)
        ResolvedLabel.objects.create(
            case=made["doubtful given"], label=a, source="given", doubtful=True
        )
        made["excluded"] = CaseFactory(project=project, split=split, given_label=a)
        ResolvedLabel.objects.create(
            case=made["excluded"], label=b, source="annotation", excluded=True
        )
    return project, {split: {k: c.pk for k, c in made.items()} for split, made in cases.items()}


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_no_evaluation_case_enters_the_training_set(weight) -> None:
    """Whatever the given-label weight, training takes pool cases only."""
    project, ids = _world(weight)
    trained = set(training_set(project=project).case_ids.tolist())
    assert not trained & set(ids[Split.EVAL].values())
    pool = ids[Split.POOL]
    analysts = {pool[s] for s in ANALYST} | {pool["analyst, no given"]}
    given = {pool["given"], pool["resolved as given"]} if weight > 0 else set()
    assert trained == analysts | given  # never doubtful, excluded or unlabelled


def test_no_evaluation_case_enters_label_issue_detection() -> None:
    """Detection checks pool cases only (analysts' label over the given one)."""
    project, ids = _world(1.0)
    checked = set(detection_set(project=project).case_ids.tolist())
    assert not checked & set(ids[Split.EVAL].values())
    assert checked == set(ids[Split.POOL].values()) - {
        ids[Split.POOL]["unlabelled"],
        ids[Split.POOL]["excluded"],
    }


def test_evaluation_labels_are_analysts_labels_of_evaluation_cases_only() -> None:
    """Given labels, resolutions of source `given`, excluded labels, pool labels and reviewers'
    decisions (which come from no evaluation draw) are never evaluation labels."""
    project, ids = _world(1.0)
    labels = evaluation_set(project=project)
    evaluated = set(labels.case_ids.tolist())
    eval_ids = ids[Split.EVAL]
    drawn = (ResolutionSource.ANNOTATION, ResolutionSource.CONSENSUS)
    assert evaluated == {eval_ids[s] for s in drawn} | {eval_ids["analyst, no given"]}
    assert labels.from_analyst.all() and (labels.weights == 1.0).all()
    analyst_label = ResolvedLabel.objects.get(case_id=eval_ids["annotation"]).label_id
    assert set(labels.labels.tolist()) == {analyst_label}  # the analysts', not the given one


def test_a_training_snapshot_holds_no_evaluation_case(settings, tmp_path, monkeypatch) -> None:
    """The snapshot a model version records (ids in the row and in the file) is pool-only."""
    settings.WORKBENCH_DATA_DIR = tmp_path
    project, ids = _world(1.0)
    rng = np.random.default_rng(0)
    hashes = Case.objects.filter(project=project).values_list("content_hash", flat=True)
    store_vectors({h: rng.normal(size=4) for h in hashes})
    version = training.train_model(project=project)
    assert version is not None
    eval_ids = set(ids[Split.EVAL].values())
    assert set(version.snapshot_case_ids) == set(training_set(project=project).case_ids.tolist())
    assert not set(version.snapshot_case_ids) & eval_ids
    assert not set(np.load(version.params["snapshot_ids_file"]).tolist()) & eval_ids


def _decide(case, verdict, **kwargs):
    """A reviewer's decision on a review item of `case`, through the service."""
    item = QueueItem.objects.create(project=case.project, case=case, kind=QueueKind.REVIEW)
    return review_submit(
        item=item,
        reviewer=AnalystFactory(),
        submission_id=uuid.uuid4(),
        verdict=verdict,
        **kwargs,
    )


@pytest.fixture
def reviewed():
    """Given labels at weight 0.3, and pool and evaluation cases a reviewer decided."""
    project = ProjectFactory(given_label_weight=0.3)
    a, b = LabelClassFactory(project=project), LabelClassFactory(project=project)
    cases = {
        name: CaseFactory(project=project, given_label=a, split=split)
        for name, split in [
            ("given", Split.POOL),
            ("relabelled", Split.POOL),
            ("confirmed", Split.POOL),
            ("ambiguous", Split.POOL),
            ("excluded", Split.POOL),
            ("eval relabelled", Split.EVAL),
            ("eval excluded", Split.EVAL),
        ]
    }
    _decide(cases["relabelled"], Verdict.RELABEL, label=b)
    _decide(cases["confirmed"], Verdict.CONFIRM)
    _decide(cases["ambiguous"], Verdict.AMBIGUOUS)
    _decide(cases["excluded"], Verdict.EXCLUDE, exclude_reason="duplicate")
    _decide(cases["eval relabelled"], Verdict.RELABEL, label=b)
    _decide(cases["eval excluded"], Verdict.EXCLUDE, exclude_reason="unreadable")
    return project, {k: c.pk for k, c in cases.items()}, (a.pk, b.pk)


def test_reviewed_pool_cases_train_at_full_weight_with_the_decision(reviewed) -> None:
    """A reviewer's decision trains at weight 1 whatever the given-label weight; a given label
    the reviewer could not decide (ambiguous) stays out while the excluded case leaves."""
    project, ids, (a, b) = reviewed
    labels = training_set(project=project)
    pairs = zip(labels.labels.tolist(), labels.weights.tolist(), strict=True)
    trained = dict(zip(labels.case_ids.tolist(), pairs, strict=True))
    assert trained == {
        ids["given"]: (a, 0.3),
        ids["relabelled"]: (b, 1.0),
        ids["confirmed"]: (a, 1.0),
    }


def test_a_reviewed_evaluation_case_never_trains_nor_evaluates(reviewed) -> None:
    project, ids, _ = reviewed
    for labels in (training_set, evaluation_set, detection_set):
        checked = set(labels(project=project).case_ids.tolist())
        assert ids["eval relabelled"] not in checked and ids["eval excluded"] not in checked


def test_excluded_cases_never_train_evaluate_or_get_checked(reviewed) -> None:
    project, ids, _ = reviewed
    for labels in (training_set, evaluation_set, detection_set):
        checked = set(labels(project=project).case_ids.tolist())
        assert ids["excluded"] not in checked
    # Detection checks decided cases with the decision as their label (never re-flagged).
    detected = detection_set(project=project)
    assert ids["relabelled"] in detected.case_ids.tolist()
    assert decided_case_ids(project=project).tolist() == sorted(
        ids[k]
        for k in (
            "relabelled", "confirmed", "ambiguous", "excluded", "eval relabelled", "eval excluded",
        )
    )  # fmt: skip
