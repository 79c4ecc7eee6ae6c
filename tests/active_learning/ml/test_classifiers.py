"""Tests for active_learning.ml.classifiers: class alignment, rare classes, weights, tuning."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_sample_weight

from active_learning.ml.classifiers import (
    DEFAULT_C,
    TUNE_MIN_SAMPLES,
    AlignedClassifier,
    TunedLogisticRegression,
    class_balance_weights,
    make_classifier,
)

CLASSES = ["arms", "bakery", "casino", "drugs", "empty"]


def blobs(n_per_class: int = 30, n_classes: int = 3, seed: int = 0, spread: float = 1.0):
    """Gaussian blobs on the unit sphere-ish: X (n, 8), labels from CLASSES."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, 8)) * 2.0
    X = np.vstack([c + spread * rng.normal(size=(n_per_class, 8)) for c in centres])
    y = np.repeat(np.array(CLASSES[:n_classes]), n_per_class)
    return X, y


@pytest.mark.parametrize("kind", ["logreg", "linear_svm", "mlp"])
@pytest.mark.parametrize("calibration", [None, "temperature"])
def test_proba_columns_follow_the_full_class_list(kind, calibration):
    """predict_proba has one column per project class; unseen classes get zero."""
    X, y = blobs()
    model = make_classifier(kind, classes=CLASSES, calibration=calibration, C=1.0, random_state=0)
    proba = model.fit(X, y).predict_proba(X)
    assert proba.shape == (len(X), len(CLASSES))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(proba[:, 3:], 0.0)
    assert (model.predict(X) == y).mean() > 0.9


def test_zero_and_one_label_classes_do_not_crash():
    """A class with one label and a class with none still train and predict."""
    X, y = blobs()
    y = y.copy()
    y[0] = "drugs"  # a single label
    model = make_classifier("logreg", classes=CLASSES, random_state=0).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 5)
    assert np.all(proba[:, CLASSES.index("empty")] == 0.0)
    assert proba[:, CLASSES.index("drugs")].max() > 0.0
    # The inner estimator is fitted on column positions: "drugs" is column 3.
    assert f"[{CLASSES.index('drugs')}]" in model.estimator_.fallback_reason_


def test_a_single_labelled_class_predicts_it_with_certainty():
    """With labels of one class only, that class gets probability one."""
    X = np.zeros((3, 4))
    model = make_classifier("logreg", classes=CLASSES).fit(X, ["bakery"] * 3)
    np.testing.assert_array_equal(model.predict_proba(X[:1]), [[0, 1, 0, 0, 0]])


def test_unknown_labels_are_rejected():
    """A label outside the class list is an error naming the label."""
    X, y = blobs()
    with pytest.raises(ValueError, match="'zzz'"):
        AlignedClassifier(TunedLogisticRegression(), classes=CLASSES).fit(X, [*y[:-1], "zzz"])


def test_sample_weights_change_the_fit():
    """Down-weighting half of one class moves its probabilities."""
    X, y = blobs(spread=2.5)
    weights = np.ones(len(y))
    weights[y == "arms"] = 0.05
    plain = make_classifier("logreg", classes=CLASSES, C=1.0, calibration=None).fit(X, y)
    weighted = make_classifier("logreg", classes=CLASSES, C=1.0, calibration=None).fit(
        X, y, sample_weight=weights
    )
    arms = CLASSES.index("arms")
    assert weighted.predict_proba(X)[:, arms].mean() < plain.predict_proba(X)[:, arms].mean() - 0.05


def test_balanced_class_weight_favours_the_rare_class():
    """class_weight='balanced' raises the rare class's probabilities."""
    X, y = blobs(spread=2.5)
    keep = (y != "casino") | (np.arange(len(y)) % 6 == 0)
    X, y = X[keep], y[keep]
    casino = CLASSES.index("casino")
    plain = make_classifier("logreg", classes=CLASSES, C=1.0, calibration=None).fit(X, y)
    balanced = make_classifier(
        "logreg", classes=CLASSES, C=1.0, calibration=None, class_weight="balanced"
    ).fit(X, y)
    assert balanced.predict_proba(X)[:, casino].mean() > plain.predict_proba(X)[:, casino].mean()


def test_class_balance_weights_follow_the_weighted_class_totals():
    """Unit weights: scikit-learn's "balanced"; sample weights count as mass; power 1/2: the
    square root; a class weighing nothing keeps 1."""
    y = np.array(["a"] * 6 + ["b"] * 3 + ["c"])
    np.testing.assert_allclose(class_balance_weights(y), compute_sample_weight("balanced", y))
    w = np.array([0.5] * 6 + [1.0] * 3 + [1.0])  # masses 3, 3, 1 of 7
    expected = {"a": 7 / 9, "b": 7 / 9, "c": 7 / 3}
    np.testing.assert_allclose(class_balance_weights(y, w), [expected[c] for c in y])
    np.testing.assert_allclose(
        class_balance_weights(y, w, power=0.5), [expected[c] ** 0.5 for c in y]
    )
    zero = class_balance_weights(y, np.where(y == "c", 0.0, 1.0))
    assert zero[-1] == 1.0 and zero[0] == pytest.approx(9 / 12)


@pytest.mark.parametrize(("n_per_class", "power"), [(100, 1.0), (TUNE_MIN_SAMPLES // 2, 0.5)])
def test_auto_class_weight_balances_fully_only_small_training_sets(n_per_class, power):
    """ "auto" fits exactly as the balance weights at power 1 below TUNE_MIN_SAMPLES rows and
    at 1/2 from there, times the caller's sample weights."""
    X, y = blobs(n_per_class=n_per_class, spread=2.5)
    keep = (y != "casino") | (np.arange(len(y)) % 5 == 0)  # a rare class
    X, y = X[keep], y[keep]
    assert (len(y) < TUNE_MIN_SAMPLES) == (power == 1.0)
    weights = np.where(np.arange(len(y)) % 2 == 0, 1.0, 0.5)
    auto = make_classifier("logreg", classes=CLASSES, C=1.0, calibration=None, class_weight="auto")
    auto.fit(X, y, sample_weight=weights)
    explicit = make_classifier("logreg", classes=CLASSES, C=1.0, calibration=None).fit(
        X, y, sample_weight=weights * class_balance_weights(y, weights, power=power)
    )
    np.testing.assert_allclose(auto.predict_proba(X), explicit.predict_proba(X), atol=1e-6)
    plain = make_classifier("logreg", classes=CLASSES, C=1.0, calibration=None)
    plain.fit(X, y, sample_weight=weights)
    casino = CLASSES.index("casino")
    assert auto.predict_proba(X)[:, casino].mean() > plain.predict_proba(X)[:, casino].mean()


def test_tuned_logreg_chooses_C_by_cross_validation():
    """With enough labels C comes from the grid with recorded CV scores."""
    X, y = blobs(n_per_class=20)
    model = TunedLogisticRegression(Cs=(0.01, 10.0), cv=3, min_samples=30, random_state=0)
    model.fit(X, y)
    assert model.C_ in (0.01, 10.0)
    assert set(model.cv_scores_) == {0.01, 10.0}
    assert model.cv_skipped_reason_ is None
    assert model.predict_proba(X).shape == (60, 3)


def test_tuned_logreg_keeps_the_default_C_below_a_thousand_labels():
    """A few hundred labels choose C by noise (consecutive retrains' C jumped from 3 to 100):
    C stays DEFAULT_C, and the reason says why."""
    X, y = blobs(n_per_class=400)
    few = TunedLogisticRegression(Cs=(0.01, 100.0), random_state=0).fit(X[::2], y[::2])
    assert few.C_ == DEFAULT_C and few.cv_scores_ == {}
    assert "600 labels in 3 classes" in (few.cv_skipped_reason_ or "")
    many = TunedLogisticRegression(Cs=(0.01, 100.0), random_state=0).fit(X, y)
    assert many.cv_skipped_reason_ is None and set(many.cv_scores_) == {0.01, 100.0}


def test_tuned_logreg_skips_cv_with_few_labels():
    """Too few labels for CV: the default C is used and the reason recorded."""
    X, y = blobs(n_per_class=4)
    model = TunedLogisticRegression(cv=3, default_C=7.0).fit(X, y)
    assert model.C_ == 7.0
    assert "too few labels" in model.cv_skipped_reason_


def test_unknown_kind_is_an_error():
    """An unknown classifier kind names the valid ones."""
    with pytest.raises(ValueError, match="logreg"):
        make_classifier("forest", classes=CLASSES)
