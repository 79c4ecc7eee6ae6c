"""Tests for active_learning.ml.paired and ml.crossfit: the paired prohibited-tier guard and the
cross-fitted warm-up comparison."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score, log_loss

from active_learning.ml.crossfit import TrainingRows, cross_fit, fold_of, rows_capped
from active_learning.ml.paired import (
    LOSS_FLOOR,
    MIN_POSITIVES,
    PairedF1,
    paired_log_loss,
    paired_macro_f1,
    paired_recall,
)


def scores(seed: int, n: int = 200, positives: int = 30, skill: float = 2.0):
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=bool)
    y[:positives] = True
    return y, skill * y + rng.normal(size=n)


def test_the_same_model_on_both_sides_differs_by_nothing():
    y, s = scores(0)
    result = paired_recall(y, s, s, target_precision=0.99)
    assert result.difference == 0.0 and result.difference_ci == (0.0, 0.0)
    assert result.p_worse == 0.0
    assert result.precision is not None and result.precision <= 0.99


def test_a_worse_challenger_is_seen_from_thirty_positives():
    y, good = scores(1, skill=4.0)
    _, bad = scores(2, skill=1.0)
    result = paired_recall(y, good, bad, target_precision=0.99)
    assert result.measured and result.n_positives == 30
    assert result.difference < -0.1
    assert result.p_worse > 0.8
    assert result.difference_ci[1] < 0
    better = paired_recall(y, bad, good, target_precision=0.99)
    assert better.difference > 0.1 and better.p_worse < 0.2


def test_too_few_positives_measure_nothing():
    y, s = scores(3, positives=MIN_POSITIVES - 1)
    result = paired_recall(y, s, s + 1, target_precision=0.99)
    assert not result.measured and result.n_positives == MIN_POSITIVES - 1


def test_weights_count_in_the_recall():
    # six positives; the challenger ranks a negative above the heavy positive (case 0), so at
    # the champion's precision (1.0, capped at 0.99) it keeps only case 1
    y = np.array([True, True, False, False, False, False, True, True, True, True])
    champion = np.array([0.9, 0.41, 0.3, 0.2, 0.1, 0.05, 0.45, 0.44, 0.43, 0.42])
    challenger = np.array([0.7, 0.9, 0.8, 0.2, 0.1, 0.05, 0.45, 0.44, 0.43, 0.42])
    heavy = np.array([10, 1, 1, 1, 1, 1, 1, 1, 1, 1.0])
    plain = paired_recall(y, champion, challenger, target_precision=0.99)
    weighted = paired_recall(y, champion, challenger, target_precision=0.99, sample_weight=heavy)
    assert plain.precision == weighted.precision == pytest.approx(0.99)
    assert plain.champion == weighted.champion == pytest.approx(1.0)
    assert plain.challenger == pytest.approx(1 / 6)
    assert weighted.challenger == pytest.approx(1 / 15)


def test_cross_fitting_never_scores_a_side_on_a_case_it_trained_on():
    ids = np.arange(100, 160)
    seen: list[tuple[set[int], set[int]]] = []
    X = {int(i): np.array([float(i)]) for i in range(100, 200)}

    def features(case_ids: np.ndarray) -> np.ndarray:
        return np.stack([X[int(i)] for i in case_ids]) if len(case_ids) else np.zeros((0, 1))

    def fit_predict(X_train, y_train, w_train, X_test):
        seen.append(({int(x) for x in X_train[:, 0]}, {int(x) for x in X_test[:, 0]}))
        return np.full((len(X_test), 2), 0.5)

    both = TrainingRows(np.arange(100, 200), np.zeros(100, dtype=int), np.ones(100))
    result = cross_fit(
        scored_ids=ids, scored_labels=np.zeros(60, dtype=int), champion=both, challenger=both,
        features=features, fit_predict=fit_predict, n_classes=2, n_folds=3,
    )  # fmt: skip
    assert len(seen) == 6
    assert all(not (train & test) for train, test in seen)
    assert set().union(*(test for _, test in seen)) == set(ids.tolist())
    assert np.bincount(result.folds).tolist() == [20, 20, 20]
    assert result.champion.shape == (60, 2)


def test_capped_rows_keep_every_analyst_label():
    rows = TrainingRows(np.arange(1000), np.zeros(1000, dtype=int), np.ones(1000))
    capped = rows_capped(rows, keep_ids=np.arange(990, 1000), cap=100, seed=0)
    assert capped.case_ids.size == 100
    assert set(range(990, 1000)) <= set(capped.case_ids.tolist())
    assert fold_of(7, n_folds=3).tolist().count(0) == 3


def test_paired_macro_f1_knows_a_better_model_from_a_lucky_one():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, size=300)
    good = np.where(rng.random(300) < 0.9, y, (y + 1) % 4)
    bad = np.where(rng.random(300) < 0.6, y, (y + 1) % 4)
    assert paired_macro_f1(y, bad, good, classes=[0, 1, 2, 3]).p_better > 0.99
    assert paired_macro_f1(y, good, bad, classes=[0, 1, 2, 3]).p_better < 0.01
    same = paired_macro_f1(y, good, good, classes=[0, 1, 2, 3])
    assert same.champion == same.challenger and same.p_better == 0.0
    ids = np.arange(1000, 1100)
    capped_a = rows_capped(
        TrainingRows(ids, np.zeros(100), np.ones(100)), keep_ids=ids[:0], cap=50, seed=1
    )
    capped_b = rows_capped(
        TrainingRows(ids[1:], np.zeros(99), np.ones(99)), keep_ids=ids[:0], cap=50, seed=1
    )
    shared = np.intersect1d(capped_a.case_ids, capped_b.case_ids).size
    assert shared >= 49  # one case fewer on one side moves at most one pick


def test_paired_macro_f1_weighs_cases_like_sklearn():
    """Weighted by the evaluation design's inverse inclusion probabilities, the point values
    are sklearn's weighted macro-F1; equal weights change nothing."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 5, size=400)
    old = np.where(rng.random(400) < 0.7, y, (y + 1) % 5)
    new = np.where(rng.random(400) < 0.8, y, (y + 2) % 5)
    w = rng.choice([1.0, 4.0, 10.0], size=400)
    paired = paired_macro_f1(y, old, new, classes=list(range(5)), sample_weight=w)
    assert paired.champion == pytest.approx(f1_score(y, old, average="macro", sample_weight=w))
    assert paired.challenger == pytest.approx(f1_score(y, new, average="macro", sample_weight=w))
    plain = paired_macro_f1(y, old, new, classes=list(range(5)))
    equal = paired_macro_f1(y, old, new, classes=list(range(5)), sample_weight=np.full(400, 3.0))
    assert equal.champion == pytest.approx(plain.champion)
    assert equal.p_better == plain.p_better


def probabilities(y: np.ndarray, k: int, on_truth: np.ndarray) -> np.ndarray:
    """Each row puts `on_truth` on its true class and spreads the rest evenly."""
    proba = np.repeat(((1 - on_truth) / (k - 1))[:, None], k, axis=1)
    proba[np.arange(y.size), y] = on_truth
    return proba


def test_paired_log_loss_is_the_class_balanced_log_loss():
    """Each class present counts once: sklearn's log loss with every case weighted by its
    design weight over its class's total, and equal weights change nothing."""
    rng = np.random.default_rng(3)
    k, n = 5, 300
    y = rng.choice(k, size=n, p=[0.5, 0.3, 0.1, 0.07, 0.03])
    old = 0.9 * rng.dirichlet(np.ones(k), size=n) + 0.1 / k  # above the floor
    new = 0.9 * rng.dirichlet(np.ones(k), size=n) + 0.1 / k
    w = rng.choice([1.0, 3.0, 8.0], size=n)
    balanced = w / np.bincount(y, weights=w, minlength=k)[y]
    paired = paired_log_loss(y, old, new, classes=list(range(k)), sample_weight=w)
    assert paired.champion == pytest.approx(log_loss(y, old, sample_weight=balanced))
    assert paired.challenger == pytest.approx(log_loss(y, new, sample_weight=balanced))
    plain = paired_log_loss(y, old, new, classes=list(range(k)))
    equal = paired_log_loss(y, old, new, classes=list(range(k)), sample_weight=np.full(n, 2.0))
    assert equal.champion == pytest.approx(plain.champion)
    assert equal.p_better == plain.p_better


def test_paired_log_loss_sees_what_macro_f1_cannot():
    """Two models with the same top class on every case have the same macro-F1 on any labels;
    the one that puts more probability on the truth is told apart on 150 of them."""
    rng = np.random.default_rng(8)
    k, n = 4, 150
    y = rng.integers(0, k, size=n)
    old = probabilities(y, k, rng.uniform(0.3, 0.6, size=n))
    new = probabilities(y, k, np.minimum(0.95, old[np.arange(n), y] + rng.uniform(0, 0.1, n)))
    ids = list(range(k))
    f1 = paired_macro_f1(y, old.argmax(axis=1), new.argmax(axis=1), classes=ids)
    assert f1.champion == f1.challenger and f1.p_better == 0.0
    loss = paired_log_loss(y, old, new, classes=ids)
    assert loss.challenger < loss.champion and loss.p_better > 0.95
    assert paired_log_loss(y, new, old, classes=ids).p_better < 0.05
    same = paired_log_loss(y, old, old, classes=ids)
    assert same.champion == same.challenger and same.p_better == 0.0


def test_one_confident_mistake_costs_the_floor_not_infinity():
    y = np.array([0, 1, 1, 0])
    sure = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])  # the third is wrong
    loss = paired_log_loss(y, sure, sure, classes=[0, 1])
    assert loss.champion == pytest.approx(-np.log(LOSS_FLOOR) / 2 / 2)
    # Class ids need not be column numbers: the columns follow `classes`.
    ids = paired_log_loss(np.array([20, 10, 10, 20]), sure, sure, classes=[20, 10])
    assert ids.champion == pytest.approx(loss.champion)
    stored = PairedF1(champion=0.5, challenger=0.6, p_better=0.9, loss=loss)
    assert PairedF1.from_json(stored.to_json()) == stored
    assert PairedF1.from_json({"champion": 0.5, "challenger": 0.6, "p_better": 0.9}).loss is None


def test_a_broken_model_never_wins_on_loss():
    """A probability that is not a number gives no loss comparison at all (else NaN losses
    summed as nothing would make the broken side the better one)."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, size=60)
    good = probabilities(y, 3, np.full(60, 0.7))
    broken = good.copy()
    broken[5] = np.nan
    assert paired_log_loss(y, good, broken, classes=[0, 1, 2]) is None
    assert paired_log_loss(y, broken, good, classes=[0, 1, 2]) is None


def test_labels_outside_the_classes_and_classes_a_resample_missed():
    """A label no column stands for is left out, as macro-F1 leaves it out; a rare class that
    some resamples miss drops out of those resamples only, without a warning."""
    rng = np.random.default_rng(6)
    y = np.r_[rng.integers(0, 3, size=80), 3]  # one case of class 3, missed by ~37% of resamples
    old = probabilities(y, 4, rng.uniform(0.3, 0.6, size=81))
    new = probabilities(y, 4, rng.uniform(0.3, 0.6, size=81))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = paired_log_loss(y, old, new, classes=[0, 1, 2, 3])
        assert full is not None and 0.0 < full.p_better < 1.0
        stranger = paired_log_loss(np.r_[y, 99], np.r_[old, old[:1]], np.r_[new, new[:1]],
                                   classes=[0, 1, 2, 3])  # fmt: skip
    assert stranger == full
    assert paired_log_loss(np.array([99]), old[:1], new[:1], classes=[0, 1, 2, 3]) is None
