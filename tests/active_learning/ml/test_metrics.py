"""Tests for active_learning.ml.metrics: report, tiers and operating points at a target precision."""

from __future__ import annotations

import json

import numpy as np
import pytest

from active_learning.ml.metrics import (
    TIERS,
    EvaluationReport,
    evaluate,
    operating_point,
    positives_needed,
    tier_scores,
    wilson_lower,
)


def calibrated_sample(n: int, rng: np.random.Generator):
    """Scores uniform on [0, 1] and labels drawn with exactly that probability."""
    scores = rng.uniform(size=n)
    return rng.uniform(size=n) < scores, scores


def test_operating_point_holds_on_fresh_samples():
    """A point chosen on one calibrated sample reaches the target on a fresh one, inside its
    interval, in at least 90 of 100 repetitions.

    The fresh sample is large, so its precision is close to the true precision at the threshold.
    """
    rng = np.random.default_rng(0)
    hits = 0
    for rep in range(100):
        y, s = calibrated_sample(2000, rng)
        point = operating_point(y, s, target_precision=0.9, n_bootstrap=200, random_state=rep)
        assert point.enough_evidence and point.threshold is not None
        y_new, s_new = calibrated_sample(50_000, rng)
        fresh = y_new[s_new >= point.threshold].mean()
        low, high = point.precision_ci
        hits += bool(fresh >= 0.9 and low <= fresh <= high)
    assert hits >= 90


def test_too_few_labels_are_not_enough_evidence():
    """Ten perfect positives cannot prove 0.99 precision; the labels still needed are estimated."""
    y = np.r_[np.ones(10, bool), np.zeros(90, bool)]
    scores = np.r_[np.full(10, 0.99), np.linspace(0.0, 0.5, 90)]
    point = operating_point(y, scores, target_precision=0.99, min_positives=5, random_state=0)
    assert point.threshold == pytest.approx(0.99)
    assert point.precision == 1.0 and point.recall == 1.0
    assert not point.enough_evidence
    assert "lower bound" in point.reason
    needed = positives_needed(1.0, 0.99)
    assert point.more_positives_needed == needed - 10
    assert point.more_labels_needed == int(np.ceil((needed - 10) * 100 / 10))


def test_positives_needed_is_the_smallest_proving_count():
    """At the returned count the Wilson bound reaches the target; one fewer does not."""
    for precision, target in [(1.0, 0.99), (0.97, 0.95), (0.995, 0.99)]:
        n = positives_needed(precision, target)
        assert wilson_lower(precision * n, n) >= target > wilson_lower(precision * (n - 1), n - 1)
    assert positives_needed(0.98, 0.99) is None


def test_unreachable_target_has_no_threshold():
    """When no threshold's observed precision reaches the target, none is returned."""
    y = np.array([False, True] * 50)
    point = operating_point(y, np.linspace(1, 0, 100), target_precision=0.99, random_state=0)
    assert point.threshold is None and not point.enough_evidence
    assert point.more_labels_needed is None


def test_few_positive_labels_are_not_enough_evidence():
    """Fewer true positives than min_positives is never enough evidence."""
    y = np.r_[np.ones(3, bool), np.zeros(997, bool)]
    point = operating_point(y, np.r_[np.ones(3), np.zeros(997)], target_precision=0.5)
    assert not point.enough_evidence and point.reason == "3 positive labels, 10 needed"


def test_tier_scores_sum_class_probabilities():
    """A tier's score is the sum of its classes' probabilities."""
    proba = np.array([[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]])
    tiers = {"bakery": "supportable", "casino": "restricted", "arms": "prohibited"}
    scores = tier_scores(proba, ["bakery", "arms", "casino"], tiers)
    np.testing.assert_allclose(scores, [[0.5, 0.3, 0.2], [0.1, 0.8, 0.1]])
    assert TIERS == ("supportable", "restricted", "prohibited")


def test_evaluate_reports_classes_tiers_and_points_as_json():
    """The report has accuracy, macro-F1, per-class and per-tier figures and serializes to JSON."""
    rng = np.random.default_rng(1)
    classes = ["bakery", "florist", "casino", "arms"]
    tiers = {"bakery": "supportable", "florist": "supportable", "casino": "restricted",
             "arms": "prohibited"}  # fmt: skip
    truth = rng.integers(0, 4, size=400)
    logits = 3.0 * np.eye(4)[truth] + rng.normal(size=(400, 4))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array(classes)[truth]
    report = evaluate(y, proba, classes=classes, tiers=tiers, target_precision=0.95,
                      n_bootstrap=100, random_state=0)  # fmt: skip
    assert report.accuracy == pytest.approx((proba.argmax(1) == truth).mean())
    assert 0 < report.macro_f1 <= 1 and 0 <= report.ece <= 1
    assert [m.name for m in report.per_class] == classes
    assert [m.name for m in report.per_tier] == list(TIERS)
    assert report.per_tier[0].support == int(np.isin(truth, [0, 1]).sum())
    assert [p.name for p in report.class_operating_points] == classes
    assert [p.name for p in report.tier_operating_points] == list(TIERS)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["per_class"][0]["name"] == "bakery"
    assert set(data["tier_operating_points"][2]) >= {"threshold", "precision_ci", "enough_evidence"}


STORED_KEYS = {
    "n_samples", "accuracy", "macro_f1", "ece", "brier", "per_class", "per_tier",
    "class_operating_points", "tier_operating_points", "eval_labels_per_class",
    "weighted", "n_effective", "macro_f1_ci", "accuracy_ci",
}  # fmt: skip


def _four_class_report() -> EvaluationReport:
    rng = np.random.default_rng(3)
    classes = [11, 12, 13, 14]
    tiers = {11: "supportable", 12: "supportable", 13: "restricted", 14: "prohibited"}
    truth = rng.integers(0, 4, size=300)
    logits = 3.0 * np.eye(4)[truth] + rng.normal(size=(300, 4))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array(classes)[truth]
    return evaluate(y, proba, classes=classes, tiers=tiers, target_precision=0.9,
                    n_bootstrap=50, random_state=0)  # fmt: skip


def test_a_report_reads_back_from_its_stored_json():
    """to_json gives the keys ModelVersion.metrics has always held; from_json restores it."""
    report = _four_class_report()
    data = json.loads(json.dumps(report.to_json()))  # as the JSON column hands it back
    assert set(data) == STORED_KEYS
    assert data["eval_labels_per_class"] == {
        str(c): int(m.support) for c, m in zip([11, 12, 13, 14], report.per_class, strict=True)
    }
    assert EvaluationReport.from_json(data) == report
    assert report.target_precision == 0.9
    assert report.tier_point("prohibited") is report.tier_operating_points[2]


def test_an_empty_report_is_stored_as_before():
    """No evaluation labels: stored as {"n_samples": 0}; an empty JSON field reads as empty."""
    assert EvaluationReport.empty().to_json() == {"n_samples": 0}
    assert EvaluationReport.from_json({"n_samples": 0}) == EvaluationReport.empty()
    assert EvaluationReport.from_json({}) == EvaluationReport.empty()
    assert EvaluationReport.from_json(None).recall_at_target("prohibited") is None


def test_older_rows_without_newer_keys_still_read():
    """Missing brier, per-class counts or operating-point fields read as None, empty or False."""
    data = {
        "n_samples": 80, "accuracy": 0.9, "macro_f1": 0.85, "ece": 0.04,
        "per_class": [{"name": "1", "precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 40}],
        "tier_operating_points": [
            {"name": "prohibited", "target_precision": 0.99, "recall": 0.5,
             "enough_evidence": True, "precision_ci": [0.9, 1.0]},
            {"name": "restricted", "target_precision": 0.99, "recall": 0.7},
        ],
        "something_later_dropped": 1,
    }  # fmt: skip
    report = EvaluationReport.from_json(data)
    assert report.brier is None and report.eval_labels_per_class == {}
    assert report.recall_at_target("prohibited") == 0.5
    assert report.tier_point("prohibited").precision_ci == (0.9, 1.0)
    assert report.recall_at_target("restricted") is None  # no evidence recorded
    assert report.classes_short_of(2) == 0 and report.target_precision == 0.99
