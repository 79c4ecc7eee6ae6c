"""Tests for active_learning.ml.calibration: calibrators, fallbacks and calibration measures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression

from active_learning.ml.calibration import (
    CalibratedClassifier,
    brier_score,
    calibration_summary,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_bins,
)


def noisy_problem(n: int, seed: int):
    """4 overlapping Gaussian classes in 10-d (shared covariance: logistic regression fits)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(4, 10))
    y = rng.integers(0, 4, size=n)
    X = centres[y] + 1.2 * rng.normal(size=(n, 10))
    return X, y


class Overconfident(LogisticRegression):
    """Logistic regression whose logits are multiplied by 4: deliberately over-confident."""

    def decision_function(self, X):
        return 4.0 * super().decision_function(X)

    def predict_proba(self, X):
        return softmax(self.decision_function(X), axis=1)


@pytest.mark.parametrize(
    ("method", "factor"), [("temperature", 0.3), ("sigmoid", 0.8), ("isotonic", 0.8)]
)
def test_calibration_lowers_ece_of_an_overconfident_model(method, factor):
    """Calibration lowers the ECE of a deliberately over-confident model (temperature: most of it).

    One-vs-rest sigmoid and isotonic help less, as measured on Banking77 too.
    """
    X, y = noisy_problem(1200, seed=0)
    X_test, y_test = noisy_problem(3000, seed=1)
    raw = Overconfident().fit(X, y)
    raw_ece = expected_calibration_error(y_test, raw.predict_proba(X_test))
    model = CalibratedClassifier(Overconfident(), method=method, random_state=0).fit(X, y)
    ece = expected_calibration_error(y_test, model.predict_proba(X_test))
    assert raw_ece > 0.1
    assert ece < raw_ece * factor
    assert model.method_ == method and model.fallback_reason_ is None


def test_temperature_keeps_the_argmax():
    """Temperature scaling with ensemble=False never changes the predicted class."""
    X, y = noisy_problem(600, seed=2)
    raw = LogisticRegression(C=1e4, max_iter=2000).fit(X, y)
    model = CalibratedClassifier(LogisticRegression(C=1e4, max_iter=2000)).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), raw.predict(X))


def test_rare_class_uses_fewer_folds():
    """With 3 labels in the rarest class, 3 folds are used and the reason recorded."""
    X, y = noisy_problem(300, seed=3)
    y = np.where(y == 3, 0, y)
    y[:3] = 3
    model = CalibratedClassifier(LogisticRegression(), cv=5, random_state=0).fit(X, y)
    assert model.n_folds_ == 3
    assert model.fallback_reason_ == "5 folds wanted, 3 used: the rarest class has 3 labels"


def test_single_label_class_is_kept_in_training():
    """A one-label class stays predictable; calibration runs on the other classes."""
    X, y = noisy_problem(300, seed=4)
    y = np.where(y == 3, 0, y)
    y[0] = 3
    model = CalibratedClassifier(LogisticRegression(), random_state=0).fit(X, y)
    assert model.method_ == "temperature"
    assert "[3]" in model.fallback_reason_
    proba = model.predict_proba(X)
    assert proba.shape == (300, 4)
    assert proba[:, 3].max() > 0


def test_single_label_class_keeps_one_model_fitted_on_all_labels():
    """Temperature scaling with a one-label class: one estimator fitted on every label (its
    argmax, not an average of fold models), its temperature fitted on held-out logits."""
    X, y = noisy_problem(400, seed=6)
    y = np.where(y == 3, 0, y)
    y[0] = 3
    X_test, _ = noisy_problem(2000, seed=7)
    model = CalibratedClassifier(Overconfident(), random_state=0).fit(X, y)
    raw = Overconfident().fit(X, y)
    np.testing.assert_array_equal(model.predict(X_test), raw.predict(X_test))
    assert model.beta_ < 0.5  # logits blown up 4x: the fitted temperature takes most of it back
    assert "one model on all labels" in model.fallback_reason_
    assert model.n_folds_ == 5


def test_held_out_labels_weighing_nothing_leave_the_model_uncalibrated():
    """Only the one-label class weighs anything: no temperature can be fitted, and the model
    is fitted uncalibrated with the reason instead of failing."""
    X, y = noisy_problem(60, seed=8)
    y = np.where(y == 3, 0, y)
    y[5] = 3
    weights = np.zeros(60)
    weights[5] = 1.0
    model = CalibratedClassifier(LogisticRegression(), random_state=0)
    model.fit(X, y, sample_weight=weights)
    assert model.method_ == "none" and model.beta_ is None
    assert model.fallback_reason_.startswith("not calibrated: calibration failed")


def test_single_label_class_with_sigmoid_averages_the_fold_models():
    """One-vs-rest calibrators need every fold's model: sigmoid keeps the fold ensemble."""
    X, y = noisy_problem(300, seed=4)
    y = np.where(y == 3, 0, y)
    y[0] = 3
    model = CalibratedClassifier(LogisticRegression(), method="sigmoid", random_state=0).fit(X, y)
    assert model.beta_ is None
    assert "ensemble of 5 fold models" in model.fallback_reason_
    assert len(model.estimator_.calibrated_classifiers_) == 5


def test_too_few_labels_fall_back_to_uncalibrated():
    """Below min_samples the model is fitted uncalibrated, with the reason."""
    X, y = noisy_problem(12, seed=5)
    y = np.arange(12) % 3
    model = CalibratedClassifier(LogisticRegression(), min_samples=20).fit(X, y)
    assert model.method_ == "none"
    assert model.fallback_reason_.startswith("not calibrated: 12 labels")
    assert model.predict_proba(X).shape == (12, 3)


def test_measures_on_hand_computed_examples():
    """ECE, MCE and Brier match values worked out by hand."""
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    # Bins: 0.9 -> accuracy 0.5 (gap 0.4); 0.6 -> accuracy 1.0 (gap 0.4).
    assert expected_calibration_error(y, proba) == pytest.approx(0.4)
    assert maximum_calibration_error(y, proba) == pytest.approx(0.4)
    expected_brier = (2 * 0.01 + 2 * 0.81 + 2 * 0.16 + 2 * 0.16) / 4
    assert brier_score(y, proba) == pytest.approx(expected_brier)
    assert brier_score(["a", "b", "a", "a"], proba, classes=["a", "b"]) == pytest.approx(
        expected_brier
    )


def test_reliability_bins_cover_every_sample():
    """15 equal-width bins; counts add up; a perfectly calibrated sample has a small ECE."""
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, size=20000)
    proba = np.column_stack([confidence, 1 - confidence])
    y = (rng.random(20000) >= confidence).astype(int)
    bins = reliability_bins(y, proba)
    assert len(bins) == 15 and sum(b.count for b in bins) == 20000
    assert bins[0].lower == 0.0 and bins[-1].upper == 1.0
    summary = calibration_summary(y, proba)
    assert summary.ece < 0.02
    assert summary.to_dict()["bins"][14]["count"] == bins[14].count
