"""Inter-annotator agreement: Krippendorff's alpha (nominal), overall and per class pair, and
Cohen's kappa.

The alpha of a class pair (c, k) is alpha over the units that use only c and k: how reliably
analysts tell the two apart, on the usual scale. (Krippendorff's own pair diagnostic,
1 - o_ck / e_ck, runs to -20 for rare classes, which no reader can use.)

Data come in long form: equal-length int arrays ``unit`` (case id), ``rater`` (analyst id) and
``value`` (class index in 0..K-1). A unit is *pairable* when it holds >= 2 values. Intervals are
percentile bootstraps over units; each figure is an :class:`Agreement` (value, low, high, n).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Agreement",
    "WeightedStatistic",
    "alpha_agreement",
    "alpha_nominal",
    "analyst_pairs",
    "bootstrap_interval",
    "class_pairs",
    "cohen_kappa",
    "coincidences",
    "pair_alpha",
]

LENGTHS_MESSAGE = "Long-form arrays must have equal lengths, got {lengths}."
VALUES_MESSAGE = "Values must be class indices in 0..{top}, got {bad}."
DUPLICATE_MESSAGE = "Rater {rater} gave unit {unit} more than one value."
BOOTSTRAP_MESSAGE = "Need n_bootstrap >= 1 and 0 < confidence < 1, got {n} and {confidence}."

# Maps draw counts (n_resamples, n_units) to figures (n_resamples,) or (n_resamples, n_figures).
WeightedStatistic = Callable[[np.ndarray], np.ndarray]

# Resamples are drawn in chunks of at most this many draw counts: bincount's scattered writes
# stay in cache (1 MB as float64); 1000 resamples of 20k units ran 3-5x faster than at 32 MB.
_CHUNK = 1 << 17


@dataclass(frozen=True)
class Agreement:
    """One agreement figure, its bootstrap interval ``low``-``high`` and the ``n`` cases behind it.

    nan marks what the data cannot tell (no pairable unit, a single class in use).
    """

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:.2f} ({self.low:.2f}-{self.high:.2f}, {self.n:,} cases)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: nan becomes None (PostgreSQL's jsonb has no NaN)."""
        figures = {"value": self.value, "low": self.low, "high": self.high}
        return {k: None if math.isnan(v) else v for k, v in figures.items()} | {"n": self.n}


def _check(n_values: int, *arrays: Any, n_ids: int = 0) -> list[np.ndarray]:
    """Flat int64 arrays of equal length; all but the first ``n_ids`` hold class indices."""
    out = [np.asarray(a, dtype=np.int64).ravel() for a in arrays]
    if len({len(a) for a in out}) > 1:
        raise ValueError(LENGTHS_MESSAGE.format(lengths=[len(a) for a in out]))
    for v in out[n_ids:]:
        bad = v[(v < 0) | (v >= n_values)]
        if len(bad):
            bad = np.unique(bad)[:10].tolist()
            raise ValueError(VALUES_MESSAGE.format(top=n_values - 1, bad=bad))
    return out


def _unit_counts(unit: Any, value: Any, n_values: int) -> np.ndarray:
    """Value counts (n_pairable_units, K) of the units holding >= 2 values.

    Dense on purpose: the bootstrap's matrix products need it (8 MB per 100k units x 10 classes).
    """
    unit, value = _check(n_values, unit, value, n_ids=1)
    _, idx = np.unique(unit, return_inverse=True)
    n_units = int(idx.max()) + 1 if len(idx) else 0
    counts = np.bincount(idx * n_values + value, minlength=n_units * n_values)
    counts = counts.reshape(n_units, n_values)
    return counts[counts.sum(axis=1) >= 2]


def _coincidences(counts: np.ndarray) -> np.ndarray:
    c = counts.astype(float)
    w = 1.0 / (c.sum(axis=1) - 1.0)
    # o_ck = sum_u n_uc (n_uk - [c == k]) / (m_u - 1): ordered pairs of values within a unit.
    return (c * w[:, None]).T @ c - np.diag(w @ c)


def coincidences(unit: Any, value: Any, n_values: int) -> np.ndarray:
    """Krippendorff's coincidence matrix of the pairable units.

    Parameters
    ----------
    unit, value : array-like of int, shape (n_values_given,)
    n_values : int
        K, the number of classes.

    Returns
    -------
    ndarray of float, shape (K, K)
        Symmetric; row sums are the class counts ``n_c``, the total is ``n``.
    """
    return _coincidences(_unit_counts(unit, value, n_values))


def alpha_nominal(unit: Any, value: Any, n_values: int) -> float:
    """Krippendorff's alpha for nominal data, 1 - D_o / D_e (Krippendorff 2011, *Computing
    Krippendorff's Alpha-Reliability*); nan without pairable units or expected disagreement."""
    o = coincidences(unit, value, n_values)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    expected = (n * n - n_c @ n_c) / (n - 1) if n else 0.0  # n * D_e
    return float(1.0 - (n - np.trace(o)) / expected) if expected else math.nan


def _alpha_statistic(counts: np.ndarray) -> WeightedStatistic:
    c = counts.astype(float)
    m = c.sum(axis=1)
    disagreeing = (m * m - (c * c).sum(axis=1)) / (m - 1)  # off-diagonal coincidences per unit

    def statistic(weights: np.ndarray) -> np.ndarray:
        n, n_c = weights @ m, weights @ c
        result: np.ndarray = 1.0 - (weights @ disagreeing) * (n - 1) / (n * n - (n_c * n_c).sum(1))
        return result

    return statistic


def alpha_agreement(
    unit: Any,
    value: Any,
    n_values: int,
    *,
    n_bootstrap: int = 1000,
    random_state: Any = 0,
    confidence: float = 0.95,
) -> Agreement:
    """Nominal alpha with its bootstrap interval over units; ``n`` counts the pairable units."""
    counts = _unit_counts(unit, value, n_values)
    low, high = bootstrap_interval(
        _alpha_statistic(counts),
        len(counts),
        n_bootstrap=n_bootstrap,
        random_state=random_state,
        confidence=confidence,
    )
    return Agreement(alpha_nominal(unit, value, n_values), float(low), float(high), len(counts))


def pair_alpha(unit: Any, value: Any, n_values: int, c: int, k: int) -> float:
    """Alpha of the class pair (c, k): Krippendorff's alpha (nominal) over the units whose values
    are all c or k, so how reliably analysts tell c from k, on alpha's usual scale (1 perfect, 0
    chance). Units that also hold a third class say nothing about this pair and are left out;
    nan when no such unit holds both classes' values."""
    counts = _unit_counts(unit, value, n_values)
    statistic = _pair_statistic(counts, np.array([c]), np.array([k]))
    return float(statistic(np.ones((1, len(counts))))[0, 0])


def _pair_statistic(counts: np.ndarray, first: np.ndarray, second: np.ndarray) -> WeightedStatistic:
    c = counts.astype(float)
    m = c.sum(axis=1)
    a, b = c[:, first], c[:, second]  # (n_units, n_pairs)
    inside = a + b == m[:, None]  # the unit uses these two classes only
    a, b = a * inside, b * inside
    o_ab = a * b / (m - 1)[:, None]  # each unit's coincidences of the pair

    def statistic(weights: np.ndarray) -> np.ndarray:
        n_a, n_b = weights @ a, weights @ b
        n = n_a + n_b
        with np.errstate(divide="ignore", invalid="ignore"):
            # Binary nominal alpha: 1 - (n - 1) o_ab / (n_a n_b).
            result: np.ndarray = 1.0 - (n - 1) * (weights @ o_ab) / (n_a * n_b)
        return np.where(n_a * n_b > 0, result, np.nan)

    return statistic


def class_pairs(
    unit: Any,
    value: Any,
    n_values: int,
    *,
    min_cases: int = 5,
    n_bootstrap: int = 1000,
    random_state: Any = 0,
    confidence: float = 0.95,
) -> dict[tuple[int, int], Agreement]:
    """`pair_alpha` of every class pair (c < k) analysts split between on at least
    ``min_cases`` units; pairs split less often are absent.

    ``n`` counts the units the pair's alpha rests on (those using c and/or k only).
    """
    counts = _unit_counts(unit, value, n_values)
    present = (counts > 0).astype(np.int64)
    together = present.T @ present
    first, second = np.nonzero(np.triu(together >= max(min_cases, 1), 1))
    statistic = _pair_statistic(counts, first, second)
    low, high = bootstrap_interval(
        statistic,
        len(counts),
        n_bootstrap=n_bootstrap,
        random_state=random_state,
        confidence=confidence,
    )
    values = statistic(np.ones((1, len(counts))))[0]
    m = counts.sum(axis=1)
    inside = (counts[:, first] + counts[:, second] == m[:, None]) & (
        (counts[:, first] + counts[:, second]) > 0
    )
    cases = inside.sum(axis=0)
    return {
        (c, k): Agreement(float(values[i]), float(low[i]), float(high[i]), int(cases[i]))
        for i, (c, k) in enumerate(zip(first.tolist(), second.tolist(), strict=True))
    }


def cohen_kappa(a: Any, b: Any, n_values: int) -> float:
    """Cohen's kappa of two raters' values on the same units, (p_o - p_e) / (1 - p_e)
    (Cohen 1960); nan when chance agreement is 1 or there is no unit."""
    a, b = _check(n_values, a, b)
    if not len(a):
        return math.nan
    n = len(a)
    p_o = np.count_nonzero(a == b) / n
    p_e = np.bincount(a, minlength=n_values) @ np.bincount(b, minlength=n_values) / (n * n)
    return float((p_o - p_e) / (1.0 - p_e)) if p_e < 1 else math.nan


def _kappa_statistic(a: np.ndarray, b: np.ndarray, n_values: int) -> WeightedStatistic:
    agree = (a == b).astype(float)
    onehot = np.eye(n_values)
    rows, cols = onehot[a], onehot[b]

    def statistic(weights: np.ndarray) -> np.ndarray:
        n = weights.sum(axis=1)
        p_e = ((weights @ rows) * (weights @ cols)).sum(axis=1) / (n * n)
        result: np.ndarray = (weights @ agree / n - p_e) / (1.0 - p_e)
        return result

    return statistic


def analyst_pairs(
    unit: Any,
    rater: Any,
    value: Any,
    n_values: int,
    *,
    min_shared: int = 20,
    n_bootstrap: int = 1000,
    random_state: Any = 0,
    confidence: float = 0.95,
) -> dict[tuple[int, int], Agreement]:
    """Cohen's kappa of every rater pair (a < b) with >= ``min_shared`` units both labelled.

    ``n`` counts the shared units; a rater giving one unit two values is an error.
    """
    unit, rater, value = _check(n_values, unit, rater, value, n_ids=2)
    order = np.lexsort((rater, unit))
    unit, rater, value = unit[order], rater[order], value[order]
    repeated = np.flatnonzero((unit[1:] == unit[:-1]) & (rater[1:] == rater[:-1]))
    if len(repeated):
        i = repeated[0]
        raise ValueError(DUPLICATE_MESSAGE.format(rater=rater[i], unit=unit[i]))
    # Self-join on unit without a loop: each value pairs with the later (higher-rater) values of
    # its unit, so `first` always holds the lower rater id.
    starts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
    sizes = np.diff(np.r_[starts, len(unit)])
    later = np.repeat(starts + sizes, sizes) - np.arange(len(unit)) - 1
    first = np.repeat(np.arange(len(unit)), later)
    second = first + 1 + np.arange(len(first)) - np.repeat(np.cumsum(later) - later, later)
    raters, dense = np.unique(rater, return_inverse=True)
    keys, pair, shared = np.unique(
        dense[first] * len(raters) + dense[second], return_inverse=True, return_counts=True
    )
    by_pair = np.argsort(pair, kind="stable")
    ends = np.cumsum(shared)
    rng = np.random.default_rng(random_state)
    result = {}
    for p in np.flatnonzero(shared >= min_shared):
        rows = by_pair[ends[p] - shared[p] : ends[p]]
        a, b = value[first[rows]], value[second[rows]]
        low, high = bootstrap_interval(
            _kappa_statistic(a, b, n_values),
            len(rows),
            n_bootstrap=n_bootstrap,
            random_state=rng,
            confidence=confidence,
        )
        ra, rb = divmod(int(keys[p]), len(raters))
        result[(int(raters[ra]), int(raters[rb]))] = Agreement(
            cohen_kappa(a, b, n_values), float(low), float(high), len(rows)
        )
    return result


def bootstrap_interval(
    statistic: WeightedStatistic,
    n_units: int,
    *,
    n_bootstrap: int = 1000,
    random_state: Any = 0,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of a statistic, resampling units with all their values.

    A resample is given to ``statistic`` as how often it drew each unit, so the statistic is a few
    matrix products over per-unit sums instead of a recomputation on copied data.

    Parameters
    ----------
    statistic : callable
        Draw counts, float array (n_resamples, n_units), to figures (n_resamples,) or
        (n_resamples, n_figures); with all counts 1 it gives the point estimate.
    n_units : int
    n_bootstrap : int, default=1000
    random_state : int, Generator or None, default=0
    confidence : float, default=0.95

    Returns
    -------
    low, high : ndarray of float, shape () or (n_figures,)
        nan where no resample gives a finite figure (resamples giving nan are left out).
    """
    if n_bootstrap < 1 or not 0 < confidence < 1:
        raise ValueError(BOOTSTRAP_MESSAGE.format(n=n_bootstrap, confidence=confidence))
    rng = np.random.default_rng(random_state)
    rows = max(1, _CHUNK // max(n_units, 1))
    figures = []
    for start in range(0, n_bootstrap, rows):
        size = min(rows, n_bootstrap - start)
        draws = rng.integers(n_units, size=(size, n_units)) if n_units else np.zeros((size, 0))
        offsets = (np.arange(size) * n_units)[:, None]
        weights = np.bincount((draws + offsets).ravel().astype(np.int64), minlength=size * n_units)
        with np.errstate(divide="ignore", invalid="ignore"):
            figures.append(statistic(weights.reshape(size, n_units).astype(float)))
    replicates = np.concatenate(figures)
    if replicates.size == 0:  # no figure asked for (e.g. no class pair): nanquantile can't say
        return np.full(replicates.shape[1:], np.nan), np.full(replicates.shape[1:], np.nan)
    tail = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan figures give nan, as documented
        low, high = np.nanquantile(replicates, [tail, 1.0 - tail], axis=0)
    return low, high
