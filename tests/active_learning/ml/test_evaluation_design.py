"""Tests for active_learning.ml.evaluation_design and weighted evaluation: a stratified draw of the
evaluation split, and metrics that stay unbiased for the whole split."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning.ml.evaluation_design import (
    design,
    draw_order,
    inclusion_probabilities,
    inverse_inclusion_weights,
    size_measures,
    threshold_after,
)
from active_learning.ml.metrics import evaluate

CLASSES = list(range(10))
PRIORS = np.array([0.3, 0.2, 0.15, 0.1, 0.08, 0.07, 0.05, 0.03, 0.01, 0.01])


def population(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True classes with rare ones, and a model's probabilities right ~80% of the time."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(len(CLASSES), size=n, p=PRIORS)
    logits = 2.2 * np.eye(len(CLASSES))[truth] + rng.normal(size=(n, len(CLASSES)))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return truth, proba


def test_size_measures_sum_to_one_and_favour_rare_strata():
    strata = np.array([0] * 90 + [1] * 10)
    sizes = size_measures(strata, mix=0.5)
    assert sizes.sum() == pytest.approx(1.0)
    # stratum shares: 0.5 * 0.9 + 0.25 = 0.7 and 0.5 * 0.1 + 0.25 = 0.3
    assert sizes[:90].sum() == pytest.approx(0.7)
    assert sizes[90:].sum() == pytest.approx(0.3)
    assert size_measures(strata, mix=0.0) == pytest.approx(np.full(100, 0.01))


def test_equal_inclusion_probabilities_give_the_unweighted_figures():
    truth, proba = population(400)
    plain = evaluate(truth, proba, classes=CLASSES, target_precision=0.9, n_bootstrap=0)
    weights = inverse_inclusion_weights(np.full(400, 1 / 400), 37.0)
    weighted = evaluate(
        truth, proba, classes=CLASSES, target_precision=0.9, n_bootstrap=0, sample_weight=weights
    )
    assert weighted.weighted and not plain.weighted
    for name in ("accuracy", "macro_f1", "ece", "brier"):
        assert getattr(weighted, name) == pytest.approx(getattr(plain, name)), name
    assert weighted.n_effective == pytest.approx(400)
    for a, b in zip(plain.class_operating_points, weighted.class_operating_points, strict=True):
        assert (a.threshold, a.enough_evidence) == (b.threshold, b.enough_evidence)
        assert (a.precision, a.recall) == pytest.approx((b.precision, b.recall))
    for a, b in zip(plain.per_class, weighted.per_class, strict=True):
        assert (a.precision, a.recall, a.f1) == pytest.approx((b.precision, b.recall, b.f1))
        assert a.support == b.support


def test_a_stratified_draw_over_samples_rare_predicted_classes():
    truth, proba = population()
    predicted = proba.argmax(axis=1)
    u = np.random.default_rng(1).random(truth.size)
    drawn = draw_order(design(predicted, u).keys)[:200]
    uniform = draw_order(u)[:200]
    # every predicted class gets at least half an equal share (10 classes: 5% of 200 draws)
    per_stratum = np.bincount(predicted[drawn], minlength=len(CLASSES))
    assert per_stratum.min() >= 5
    assert per_stratum.min() > np.bincount(predicted[uniform], minlength=len(CLASSES)).min()


def test_weighted_metrics_are_unbiased_for_the_split_under_stratification():
    """Averaged over many stratified draws of 200 from 3,000, the weighted estimates land on the
    split's true accuracy and macro-F1; the unweighted ones do not (the test can fail)."""
    truth, proba = population()
    predicted = proba.argmax(axis=1)
    whole = evaluate(truth, proba, classes=CLASSES, n_bootstrap=0)
    rng = np.random.default_rng(7)
    weighted, plain = [], []
    for _ in range(300):
        plan = design(predicted, rng.random(truth.size))
        drawn = draw_order(plan.keys)[:200]
        t = threshold_after(plan.keys, 200)
        w = inverse_inclusion_weights(plan.sizes[drawn], t)
        assert inclusion_probabilities(plan.sizes[drawn], t).max() <= 1.0
        kwargs = {"classes": CLASSES, "n_bootstrap": 0}
        weighted.append(evaluate(truth[drawn], proba[drawn], sample_weight=w, **kwargs))
        plain.append(evaluate(truth[drawn], proba[drawn], **kwargs))
    for name, tolerance in (("accuracy", 0.005), ("macro_f1", 0.02)):
        mean_weighted = np.mean([getattr(r, name) for r in weighted])
        mean_plain = np.mean([getattr(r, name) for r in plain])
        assert mean_weighted == pytest.approx(getattr(whole, name), abs=tolerance), name
        assert abs(mean_plain - getattr(whole, name)) > 2 * abs(
            mean_weighted - getattr(whole, name)
        )


def test_every_case_drawn_means_certain_inclusion():
    keys = np.array([0.3, 0.1, 0.2])
    assert threshold_after(keys, 1) == pytest.approx(0.2)
    assert threshold_after(keys, 3) == float("inf")
    assert inverse_inclusion_weights(np.full(3, 1 / 3), threshold_after(keys, 3)) == pytest.approx(
        np.ones(3)
    )


def test_the_bootstrap_intervals_hold_the_estimates():
    truth, proba = population(500)
    report = evaluate(truth, proba, classes=CLASSES, n_bootstrap=200, random_state=0)
    assert report.macro_f1_ci is not None and report.accuracy_ci is not None
    assert report.macro_f1_ci[0] < report.macro_f1 < report.macro_f1_ci[1]
    assert report.accuracy_ci[0] < report.accuracy < report.accuracy_ci[1]
