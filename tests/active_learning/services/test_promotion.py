"""Promotion as a service: the challenger is evaluated once, in training; only the champion is
re-scored at decision time (DESIGN "Champion vs challenger")."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning.ml.promotion import PromotionDecision
from active_learning.models import ModelStatus
from active_learning.services import training
from active_learning.services.promotion import promotion_decide
from labeling.models import ResolvedLabel, Split
from tests.factories import CaseFactory, LabelClassFactory, ProjectFactory
from tests.pipeline import store_vectors

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(settings, tmp_path, monkeypatch):
    """Two separable classes: 40 pool cases with given labels, 60 evaluation cases labelled by
    analysts; features come from a fixed vector per text instead of an embedding matrix."""
    settings.WORKBENCH_DATA_DIR = tmp_path
    project = ProjectFactory(given_label_weight=1.0, target_precision=0.9)
    classes = [LabelClassFactory(project=project) for _ in range(2)]
    rng = np.random.default_rng(0)
    vectors = {}
    for i in range(100):
        label = classes[i % 2]
        split = Split.POOL if i < 40 else Split.EVAL
        case = CaseFactory(project=project, split=split, given_label=label)
        if split == Split.EVAL:
            ResolvedLabel.objects.create(case=case, label=label, source="annotation")
        vectors[case.content_hash] = rng.normal(size=4) + 2.5 * (i % 2)
    store_vectors(vectors)
    return project


@pytest.fixture
def evaluations(monkeypatch):
    """Counts calls of the evaluation function (a spy around ml.metrics.evaluate)."""
    calls = []
    real = training.evaluate

    def spy(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "evaluate", spy)
    return calls


def test_the_challenger_is_evaluated_once_and_only_the_champion_again(project, evaluations):
    """Training evaluates the challenger; deciding re-scores only the champion."""
    first = training.train_model(project=project)
    assert evaluations == [60]
    decision = promotion_decide(challenger=first)
    assert isinstance(decision, PromotionDecision) and decision.promote
    assert evaluations == [60]  # no champion yet: nothing re-scored
    first.refresh_from_db()
    stored = first.metrics

    second = training.train_model(project=project)
    assert evaluations == [60, 60]
    decision = promotion_decide(challenger=second)
    assert evaluations == [60, 60, 60]  # the champion, once
    second.refresh_from_db()
    assert second.decision == decision.to_json() and second.decision_reason == decision.reason
    assert second.metrics == stored  # same labels, same seeds: the training report stands
    assert decision.challenger is not None and decision.champion is not None
    assert decision.challenger.macro_f1 == decision.champion.macro_f1
    assert not decision.promote and decision.metric == "macro_f1"  # equal is not better
    first.refresh_from_db()
    assert first.status == ModelStatus.CHAMPION


def test_labels_arriving_after_training_rescore_the_challenger_on_them(project, evaluations):
    """Both sides stand on the same labels: a new evaluation label since training means the
    challenger is scored again on today's labels, and its stored report follows."""
    version = training.train_model(project=project)
    case = CaseFactory(project=project, split=Split.EVAL, given_label=None)
    label = ResolvedLabel.objects.filter(case__project=project).first().label
    ResolvedLabel.objects.create(case=case, label=label, source="annotation")
    store_vectors({case.content_hash: np.zeros(4)})  # embedded since, as a retrain would
    promotion_decide(challenger=version)
    assert evaluations == [60, 61]
    version.refresh_from_db()
    assert version.metrics["n_samples"] == version.n_eval == 61


def test_the_decision_stores_both_sides_log_loss_the_right_way_round(project):
    """A champion trained on swapped labels against a challenger trained on the right ones:
    the stored decision's paired comparison puts the challenger's lower log loss on its side."""
    from labeling.models import Case

    pool = list(Case.objects.filter(project=project, split=Split.POOL))
    right = {case.pk: case.given_label_id for case in pool}
    ids = sorted(set(right.values()))
    for case in pool:
        Case.objects.filter(pk=case.pk).update(given_label_id=ids[1 - ids.index(right[case.pk])])
    champion = training.train_model(project=project)
    assert promotion_decide(challenger=champion).promote  # no champion yet
    for case_id, label_id in right.items():
        Case.objects.filter(pk=case_id).update(given_label_id=label_id)
    challenger = training.train_model(project=project)
    decision = promotion_decide(challenger=challenger)
    assert decision.promote
    loss = decision.paired_f1.loss
    assert loss is not None and loss.challenger < loss.champion and loss.p_better == 1.0
    challenger.refresh_from_db()
    stored = challenger.decision["paired_f1"]
    assert stored["loss"]["challenger"] == loss.challenger < stored["loss"]["champion"]
    assert stored["challenger"] > stored["champion"]
