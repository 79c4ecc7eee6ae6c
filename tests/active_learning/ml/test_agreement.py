"""Agreement on numpy: Krippendorff's worked examples, equal to crowd-kit's alpha and sklearn's
kappa (test-only baselines), pair diagnostics, unit bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from crowdkit.metrics.data import alpha_krippendorff
from sklearn.metrics import cohen_kappa_score

from active_learning.ml import agreement
from active_learning.ml.agreement import (
    Agreement,
    alpha_agreement,
    alpha_nominal,
    analyst_pairs,
    bootstrap_interval,
    class_pairs,
    cohen_kappa,
    coincidences,
    pair_alpha,
)

NA = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers (rows),
# 12 units (columns), values 1-5, NA = missing. Unit 12 holds one value, so it is not pairable.
NOMINAL_EXAMPLE = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NA, NA, NA],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NA, 3],
    [NA, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NA],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NA],
]
# Section A: 2 observers, 10 units, binary values.
BINARY_EXAMPLE = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]


def long_form(matrix: list[list[int | None]], shift: int = 0) -> tuple[np.ndarray, ...]:
    """(unit, rater, value) from a raters x units reliability matrix, skipping missing values."""
    rows = [
        (u, r, x - shift)
        for r, row in enumerate(matrix)
        for u, x in enumerate(row)
        if x is not None
    ]
    unit, rater, value = np.array(rows).T
    return unit, rater, value


def random_ratings(seed: int, n_units: int = 60, n_raters: int = 5, k: int = 4, p: float = 0.5):
    """Each rater labels each unit with probability p; labels agree with a truth 60% of the time."""
    rng = np.random.default_rng(seed)
    unit, rater = (a.ravel() for a in np.meshgrid(np.arange(n_units), np.arange(n_raters)))
    keep = rng.random(unit.size) < p
    unit, rater = unit[keep], rater[keep]
    truth = rng.integers(k, size=n_units)
    value = np.where(rng.random(unit.size) < 0.6, truth[unit], rng.integers(k, size=unit.size))
    return unit, rater, value


def test_nominal_worked_example():
    """The 4-observer nominal example with missing values: the paper's coincidences, alpha 0.743."""
    unit, _, value = long_form(NOMINAL_EXAMPLE, shift=1)
    third = 1 / 3
    expected = [
        [7, 4 * third, third, third, 0],
        [4 * third, 10, 4 * third, third, 0],
        [third, 4 * third, 8, third, 0],
        [third, third, third, 4, 0],
        [0, 0, 0, 0, 3],
    ]
    o = coincidences(unit, value, 5)
    np.testing.assert_allclose(o, expected)
    np.testing.assert_allclose(o.sum(axis=1), [9, 13, 10, 5, 3])
    assert round(alpha_nominal(unit, value, 5), 3) == 0.743


def test_binary_worked_example():
    """The 2-observer binary example: coincidences [[10, 4], [4, 2]], alpha 0.095."""
    unit, _, value = long_form(BINARY_EXAMPLE)
    np.testing.assert_allclose(coincidences(unit, value, 2), [[10, 4], [4, 2]])
    assert round(alpha_nominal(unit, value, 2), 3) == 0.095


def test_units_with_one_value_are_dropped():
    """A unit holding a single value changes neither the coincidences nor alpha."""
    unit, _, value = long_form(BINARY_EXAMPLE)
    more_unit, more_value = np.r_[unit, 99], np.r_[value, 1]
    np.testing.assert_array_equal(
        coincidences(more_unit, more_value, 2), coincidences(unit, value, 2)
    )
    assert alpha_nominal(more_unit, more_value, 2) == alpha_nominal(unit, value, 2)


@pytest.mark.parametrize("seed", range(6))
def test_alpha_equals_crowdkit(seed):
    """On random data with missing values alpha equals crowd-kit's alpha_krippendorff to 1e-9."""
    unit, rater, value = random_ratings(seed)
    answers = pd.DataFrame({"task": unit, "worker": rater, "label": value})
    assert abs(alpha_nominal(unit, value, 4) - alpha_krippendorff(answers)) < 1e-9


def test_alpha_is_nan_when_undefined():
    """No pairable unit, or one class throughout (no expected disagreement), gives nan."""
    assert math.isnan(alpha_nominal([0, 1, 2], [0, 1, 0], 2))
    assert math.isnan(alpha_nominal([], [], 2))
    assert math.isnan(alpha_nominal([0, 0, 1, 1], [1, 1, 1, 1], 2))
    assert alpha_agreement([0, 0, 1, 1], [1, 1, 1, 1], 2, n_bootstrap=50).n == 2


def test_bad_input_is_refused():
    """Values outside 0..K-1 and arrays of unequal length raise with the module's messages."""
    with pytest.raises(ValueError) as exc:
        alpha_nominal([0, 0], [0, 2], 2)
    assert str(exc.value) == agreement.VALUES_MESSAGE.format(top=1, bad=[2])
    with pytest.raises(ValueError) as exc:
        alpha_nominal([0, 0, 1], [0, 1], 2)
    assert str(exc.value) == agreement.LENGTHS_MESSAGE.format(lengths=[3, 2])
    with pytest.raises(ValueError) as exc:
        bootstrap_interval(lambda w: w.sum(axis=1), 5, n_bootstrap=0)
    assert str(exc.value) == agreement.BOOTSTRAP_MESSAGE.format(n=0, confidence=0.95)


@pytest.mark.parametrize("seed", range(5))
def test_kappa_equals_sklearn(seed):
    """Cohen's kappa equals sklearn's cohen_kappa_score on random labels."""
    rng = np.random.default_rng(seed)
    a = rng.integers(5, size=80)
    b = np.where(rng.random(80) < 0.5, a, rng.integers(5, size=80))
    assert cohen_kappa(a, b, 5) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_kappa_of_perfect_agreement_is_one():
    """Two raters giving the same labels (more than one class in use) have kappa 1."""
    a = np.array([0, 1, 2, 2, 1, 0, 3])
    assert cohen_kappa(a, a, 4) == 1.0
    assert math.isnan(cohen_kappa([1, 1], [1, 1], 2))


def test_class_pairs_flag_the_confused_pair():
    """Classes 0 and 1 always split: pair alpha below 0; 2 and 3 never meet: absent, and their
    pair alpha is that of the units using only them (all unanimous: 1)."""
    rng = np.random.default_rng(0)
    split = [(u, c) for u in range(10) for c in (0, 1)]  # every unit: one analyst 0, one 1
    agreed = [(u, c) for u in range(10, 40) for c in [2 + u % 2] * 2]
    unit, value = np.array(split + agreed).T
    order = rng.permutation(len(unit))
    unit, value = unit[order], value[order]
    pairs = class_pairs(unit, value, 4, min_cases=1, n_bootstrap=200)
    assert list(pairs) == [(0, 1)]
    assert pairs[(0, 1)].value < 0
    assert pairs[(0, 1)].n == 10
    assert pair_alpha(unit, value, 4, 2, 3) == 1.0
    assert pair_alpha(unit, value, 4, 0, 1) == pairs[(0, 1)].value
    assert class_pairs(unit, value, 4, min_cases=11, n_bootstrap=10) == {}


def test_pair_alpha_is_the_alpha_of_the_units_using_only_the_pair():
    """Equal to alpha_nominal over the units whose values are all c or k, ignoring units that
    hold a third class."""
    unit, _, value = random_ratings(4, n_units=300)
    kept = [u for u in np.unique(unit) if set(value[unit == u]) <= {0, 2}]
    mask = np.isin(unit, kept)
    expected = alpha_nominal(unit[mask], value[mask], 4)
    assert pair_alpha(unit, value, 4, 0, 2) == pytest.approx(expected, abs=1e-12)


def test_analyst_pairs_need_twenty_shared_units():
    """Kappa for each rater pair with >= 20 shared units, equal to kappa on those units."""
    unit, rater, value = random_ratings(3, n_units=60, n_raters=4, p=0.6)
    pairs = analyst_pairs(unit, rater, value, 4, n_bootstrap=100)
    labels = {(int(u), int(r)): int(v) for u, r, v in zip(unit, rater, value, strict=True)}
    for a in range(4):
        for b in range(a + 1, 4):
            shared = [u for u in range(60) if (u, a) in labels and (u, b) in labels]
            if len(shared) < 20:
                assert (a, b) not in pairs
                continue
            got = pairs[(a, b)]
            assert got.n == len(shared)
            x, y = [labels[u, a] for u in shared], [labels[u, b] for u in shared]
            assert got.value == pytest.approx(cohen_kappa_score(x, y), abs=1e-12)
    assert pairs, "the fixture should give some pair >= 20 shared units"
    assert len(analyst_pairs(unit, rater, value, 4, min_shared=61, n_bootstrap=10)) == 0


def test_a_rater_with_two_values_for_one_unit_is_an_error():
    """Kappa needs one value per rater and unit."""
    with pytest.raises(ValueError) as exc:
        analyst_pairs([0, 0, 0], [7, 8, 7], [0, 1, 1], 2)
    assert str(exc.value) == agreement.DUPLICATE_MESSAGE.format(rater=7, unit=0)


def test_resample_figures_equal_recomputation_on_copied_units():
    """A statistic fed draw counts gives what recomputing on the drawn units (copied) gives."""
    unit, _, value = random_ratings(4, n_units=40)
    counts = agreement._unit_counts(unit, value, 4)
    kept = np.flatnonzero(np.bincount(unit, minlength=40) >= 2)
    rng = np.random.default_rng(0)
    draws = rng.integers(len(kept), size=len(kept))
    weights = np.bincount(draws, minlength=len(kept)).astype(float)[None, :]
    copied = [(i, v) for i, d in enumerate(draws) for v in value[unit == kept[d]]]
    new_unit, new_value = np.array(copied).T
    alpha = agreement._alpha_statistic(counts)(weights)[0]
    assert alpha == pytest.approx(alpha_nominal(new_unit, new_value, 4), abs=1e-12)
    first, second = np.array([0, 1]), np.array([2, 3])
    np.testing.assert_allclose(
        agreement._pair_statistic(counts, first, second)(weights)[0],
        [pair_alpha(new_unit, new_value, 4, 0, 2), pair_alpha(new_unit, new_value, 4, 1, 3)],
    )
    a, b = rng.integers(4, size=30), rng.integers(4, size=30)
    draws = rng.integers(30, size=30)
    weights = np.bincount(draws, minlength=30).astype(float)[None, :]
    kappa = agreement._kappa_statistic(a, b, 4)(weights)[0]
    assert kappa == pytest.approx(cohen_kappa(a[draws], b[draws], 4), abs=1e-12)


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_more_units():
    """The interval holds the point estimate and shrinks as units are added."""
    widths = []
    for n_units in (100, 1600):
        unit, _, value = random_ratings(5, n_units=n_units)
        result = alpha_agreement(unit, value, 4, n_bootstrap=500, random_state=1)
        assert result.low <= result.value <= result.high
        assert result.value == alpha_nominal(unit, value, 4)
        widths.append(result.high - result.low)
    assert widths[1] < widths[0] / 2  # about 1/sqrt(16) of it
    unit, rater, value = random_ratings(6, n_units=200)
    for got in analyst_pairs(unit, rater, value, 4, n_bootstrap=300).values():
        assert got.low <= got.value <= got.high


def test_bootstrap_is_deterministic_by_seed():
    """The same random_state gives the same interval; another gives another."""
    unit, rater, value = random_ratings(7, n_units=200)
    first = alpha_agreement(unit, value, 4, n_bootstrap=200, random_state=3)
    assert alpha_agreement(unit, value, 4, n_bootstrap=200, random_state=3) == first
    assert alpha_agreement(unit, value, 4, n_bootstrap=200, random_state=4) != first
    pairs = analyst_pairs(unit, rater, value, 4, n_bootstrap=100, random_state=3)
    assert analyst_pairs(unit, rater, value, 4, n_bootstrap=100, random_state=3) == pairs


def test_agreement_displays_and_stores():
    """Shown as 'value (low-high, n cases)'; stored with nan as None."""
    assert str(Agreement(0.712, 0.68, 0.741, 3120)) == "0.71 (0.68-0.74, 3,120 cases)"
    assert Agreement(math.nan, math.nan, math.nan, 0).to_dict() == {
        "value": None,
        "low": None,
        "high": None,
        "n": 0,
    }
