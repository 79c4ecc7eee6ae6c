"""Tests for active_learning.ml.pool_probe and cross-fitting's extra rows (the warm-up's
evaluation labels)."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning.ml.crossfit import TrainingRows, cross_fit
from active_learning.ml.pool_probe import (
    interleave,
    probe_count,
    probe_keys,
    probe_sample,
    probe_threshold,
    probe_weights,
)


def test_probe_keys_are_fixed_uniform_and_seeded():
    ids = np.arange(1, 20_001)
    keys = probe_keys(ids, 16_016)
    assert np.array_equal(keys[100:200], probe_keys(ids[100:200], 16_016))  # per id, not position
    assert keys.min() >= 0.0 and keys.max() < 1.0
    assert abs(keys.mean() - 0.5) < 0.01 and abs((keys < 0.1).mean() - 0.1) < 0.01
    assert not np.array_equal(keys, probe_keys(ids, 16_017))


def test_the_sample_is_the_labelled_cases_below_the_first_unsettled_key():
    keys = np.array([0.05, 0.10, 0.20, 0.30, 0.40])
    labelled = np.array([True, True, False, True, False])
    settled = labelled.copy()
    t = probe_threshold(keys, settled)
    assert t == 0.20
    assert probe_sample(keys, labelled, t).tolist() == [True, True, False, False, False]
    settled[2] = True  # given up: settled without a label, left out
    t = probe_threshold(keys, settled)
    assert t == 0.40 and probe_sample(keys, labelled, t).tolist() == [
        True, True, False, True, False,
    ]  # fmt: skip
    assert probe_threshold(keys, np.ones(5, dtype=bool)) == 1.0
    assert probe_weights(3, 0.40) == pytest.approx([2.5, 2.5, 2.5])


def test_probes_are_spread_evenly_from_the_first_position():
    mask = interleave(200, probe_count(200))
    assert mask.sum() == 40 and mask[:10].sum() == 2 and mask[-10:].sum() == 2
    assert probe_count(3) == 1 and probe_count(0) == 0 and probe_count(10, 0.0) == 0
    assert interleave(5, 5).all() and not interleave(5, 0).any()


def test_cross_fitting_scores_extra_rows_by_every_folds_refit_averaged():
    X = {int(i): np.array([float(i)]) for i in range(100, 200)}

    def features(case_ids: np.ndarray) -> np.ndarray:
        return np.stack([X[int(i)] for i in case_ids]) if len(case_ids) else np.zeros((0, 1))

    calls: list[int] = []

    def fit_predict(X_train, y_train, w_train, X_test):
        calls.append(len(X_train))
        p = np.full((len(X_test), 2), 0.0)
        p[:, 0] = len(calls)  # each refit says which it is
        return p

    both = TrainingRows(np.arange(100, 200), np.zeros(100, dtype=int), np.ones(100))
    extra = np.array([[500.0], [501.0]])
    result = cross_fit(
        scored_ids=np.arange(100, 130), scored_labels=np.zeros(30, dtype=int), champion=both,
        challenger=both, features=features, fit_predict=fit_predict, n_classes=2, n_folds=3,
        extra_X=extra,
    )  # fmt: skip
    assert result.champion.shape == (30, 2)
    assert result.champion_extra is not None and result.challenger_extra is not None
    assert result.champion_extra[:, 0] == pytest.approx([3.0, 3.0])  # (1 + 3 + 5) / 3
    assert result.challenger_extra[:, 0] == pytest.approx([4.0, 4.0])  # (2 + 4 + 6) / 3
    calls.clear()
    alone = cross_fit(
        scored_ids=np.zeros(0, dtype=np.int64), scored_labels=np.zeros(0, dtype=int),
        champion=both, challenger=both, features=features, fit_predict=fit_predict,
        n_classes=2, extra_X=extra,
    )  # fmt: skip
    assert calls == [100, 100] and alone.champion_extra.shape == (2, 2)
