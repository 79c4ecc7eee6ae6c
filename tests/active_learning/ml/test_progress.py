"""The stopping signal and the dashboard's other pure figures, on constructed versions."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning.ml.progress import (
    VersionFacts,
    changed_share,
    gain_per_100,
    labels_to_narrow,
    reliability_table,
    stopping_signal,
    top_confusions,
)

N_STOP = 1000


def _preds(base: np.ndarray, flips: int, seed: int) -> np.ndarray:
    out = base.copy()
    idx = np.random.default_rng(seed).choice(base.size, size=flips, replace=False)
    out[idx] = (out[idx] + 1) % 5
    return out


def _versions(flips: list[int], f1: list[float], labels: list[int], half: float = 0.02):
    base = np.random.default_rng(0).integers(0, 5, N_STOP)
    versions, current = [], base
    for i, (k, f, n) in enumerate(zip(flips, f1, labels, strict=True)):
        current = _preds(current, k, seed=i)
        versions.append(
            VersionFacts(number=i + 1, labels=n, macro_f1=f, macro_f1_ci=(f - half, f + half),
                         stop_predictions=current)
        )  # fmt: skip
    return versions


def test_stop_once_predictions_are_stable_and_the_gain_includes_zero() -> None:
    """Last three champions: 4 + 4 changed of 1,000 (0.8% < 1%); F1 +0.002 over 400 labels."""
    versions = _versions(
        [0, 50, 30, 4, 4], [0.6, 0.7, 0.75, 0.751, 0.752], [100, 200, 300, 500, 700]
    )
    signal = stopping_signal(versions)
    assert signal.stop
    assert signal.changed == pytest.approx(0.008)
    assert signal.gain is not None and signal.gain.includes_zero
    assert signal.gain.per_100 == pytest.approx(0.0005)
    assert signal.sentence.startswith("The model has changed less than 1% of its predictions")
    assert "further labels are unlikely to help much" in signal.sentence
    assert [c[2] for c in signal.changes] == pytest.approx([0.05, 0.03, 0.004, 0.004])


def test_changes_across_the_window_count_once_per_case_and_can_exceed_the_limit() -> None:
    """6 + 6 different cases changed: 1.2% across the three, though each step is 0.6%."""
    versions = _versions([0, 6, 6], [0.75, 0.75, 0.75], [100, 200, 300])
    signal = stopping_signal(versions)
    assert signal.changed is not None and 0.010 < signal.changed <= 0.012 + 1e-9
    assert not signal.stop and signal.sentence.startswith("Keep labelling:")


def test_a_real_gain_keeps_labelling() -> None:
    """Stable predictions, but macro-F1 rose 0.10 over 200 labels with narrow intervals."""
    versions = _versions([0, 2, 2], [0.60, 0.65, 0.70], [100, 200, 300], half=0.01)
    signal = stopping_signal(versions)
    assert not signal.stop and signal.gain is not None and not signal.gain.includes_zero
    assert "still gains" in signal.sentence


def test_too_few_champions_or_missing_stop_set() -> None:
    assert "Not enough champions yet" in stopping_signal([]).sentence
    two = _versions([0, 0], [0.7, 0.7], [100, 200])
    assert not stopping_signal(two).stop
    three = _versions([0, 0, 0], [0.7, 0.7, 0.7], [100, 200, 300])
    missing = [*three[:2], VersionFacts(3, 300, 0.7, (0.68, 0.72), None)]
    signal = stopping_signal(missing)
    assert not signal.stop and "(2 so far)" in signal.sentence
    assert signal.changes[-1] == (2, 3, None)


def test_no_measurable_gain_does_not_stop() -> None:
    versions = _versions([0, 0, 0], [0.7, 0.7, 0.7], [300, 300, 300])
    signal = stopping_signal(versions)
    assert not signal.stop and signal.gain is None and "cannot be measured" in signal.sentence


def test_changed_share_and_gain() -> None:
    assert changed_share([np.array([1, 2, 3, 4])]) is None
    assert changed_share([np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])]) == 0.25
    gain = gain_per_100(first_f1=0.7, first_ci=(0.68, 0.72), first_labels=100,
                        last_f1=0.72, last_ci=(0.70, 0.74), last_labels=300)  # fmt: skip
    assert gain is not None and gain.per_100 == pytest.approx(0.01)
    half = 1.959963984540054 * np.hypot(0.02 / 1.96, 0.02 / 1.96) / 2
    assert gain.high - gain.per_100 == pytest.approx(half, rel=1e-3)
    assert gain_per_100(first_f1=0.7, first_ci=None, first_labels=1, last_f1=0.8,
                        last_ci=(0.7, 0.9), last_labels=2) is None  # fmt: skip


def test_labels_to_narrow_a_recall_interval() -> None:
    """p = 0.5 needs 2,401 positives for +-0.02; at 10% positives 24,010 labels in all."""
    assert labels_to_narrow(recall=0.5, n_positives=10, n_samples=100) == (2401 - 10) * 10
    assert labels_to_narrow(recall=0.5, n_positives=3000, n_samples=30000) == 0
    assert labels_to_narrow(recall=None, n_positives=0, n_samples=100) is None


def test_reliability_table_matches_the_projects_ece() -> None:
    from active_learning.ml.calibration import expected_calibration_error

    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(4), size=300)
    y = rng.integers(0, 4, 300)
    w = rng.uniform(1, 5, 300)
    conf, pred = proba.max(axis=1), proba.argmax(axis=1)
    bins, ece = reliability_table(conf, pred == y, sample_weight=w)
    assert ece == pytest.approx(expected_calibration_error(y, proba, sample_weight=w))
    assert sum(b.count for b in bins) == 300
    assert reliability_table([], []) == ([], None)


def test_top_confusions_rank_by_weighted_share() -> None:
    y = np.array([1, 1, 1, 2, 2, 3, 3, 3])
    p = np.array([2, 2, 1, 1, 2, 1, 1, 3])
    top = top_confusions(y, p, top=2)
    assert top == [(1, 2, 2, 0.25), (3, 1, 2, 0.25)]
    weighted = top_confusions(y, p, sample_weight=[1, 1, 1, 10, 1, 1, 1, 1])
    assert weighted[0][:3] == (2, 1, 1)
