"""Operating points: the score threshold that proves a target precision, with its evidence.

An *operating point* is the lowest score threshold (predict positive when score >= threshold)
whose precision is proven >= a target by a one-sided Wilson score bound; when the labels cannot
prove it, the point says so and estimates how many more labels would.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

NO_THRESHOLD_REASON = "observed precision never reaches {target}"
FEW_POSITIVES_REASON = "{n} positive labels, {m} needed"
UNPROVEN_REASON = "precision lower bound {lb:.4f} < {target} with {n} cases above the threshold"


def _to_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)


@dataclass(frozen=True)
class OperatingPoint:
    """The threshold that reaches a target precision, with its evidence.

    ``precision_ci``/``recall_ci`` (two-sided, at ``confidence``) are the union of the Wilson
    interval at the threshold and a selection-aware bootstrap interval: the first covers the
    binomial noise of small counts, the second the optimism of having chosen the threshold on the
    same labels. ``precision_lower_bound`` is the one-sided Wilson bound that decides
    ``enough_evidence``. ``more_positives_needed``: extra cases above the threshold needed for that
    bound to reach the target at the observed precision; ``more_labels_needed``: the labels that
    takes at the observed share of cases above the threshold (None: not reachable).
    """

    name: str
    target_precision: float
    confidence: float
    threshold: float | None
    precision: float | None
    precision_ci: tuple[float, float] | None
    precision_lower_bound: float | None
    recall: float | None
    recall_ci: tuple[float, float] | None
    n_samples: int
    n_positives: int
    n_predicted: int
    n_true_positives: int
    enough_evidence: bool
    reason: str | None
    more_positives_needed: int | None
    more_labels_needed: int | None

    to_dict = _to_dict


def wilson_lower(k: Any, n: Any, confidence: float = 0.95) -> np.ndarray:
    """One-sided Wilson score lower confidence bound of a binomial proportion k/n (0 where n = 0).

    Wilson, "Probable inference ...", JASA 1927. Vectorized; ``k`` may be fractional.
    """
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    z = float(norm.ppf(confidence))
    safe = np.maximum(n, 1e-12)
    p = k / safe
    centre = p + z * z / (2 * safe)
    spread = z * np.sqrt(np.maximum(p * (1 - p), 0.0) / safe + z * z / (4 * safe * safe))
    return np.where(n > 0, (centre - spread) / (1 + z * z / safe), 0.0)


def effective_weights(sample_weight: Any, n: int) -> np.ndarray:
    """`sample_weight` scaled to sum to Kish's effective sample size (sum w)^2 / sum w^2, so that
    counts made with them carry the evidence of that many unweighted cases; ones when None."""
    if sample_weight is None:
        return np.ones(n, dtype=float)
    w = np.asarray(sample_weight, dtype=float)
    square = float(np.sum(w * w))
    return w * (float(w.sum()) / square) if square > 0 else w


def positives_needed(precision: float, target: float, confidence: float = 0.95) -> int | None:
    """Smallest n such that n cases at the observed precision prove the target.

    Uses :func:`wilson_lower` with k = precision * n. None when ``precision <= target`` (no
    number of such cases proves it).
    """
    if precision <= target:
        return None

    def proven(n: int) -> bool:
        return bool(wilson_lower(precision * n, n, confidence) >= target)

    high = 1
    while not proven(high):
        high *= 2
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if proven(mid) else (mid, high)
    return high


def _select(k: np.ndarray, n: np.ndarray, target: float, confidence: float) -> np.ndarray:
    """Chosen candidate index per row of (n_rows, n_candidates) counts; -1 when none.

    Descending from the top, take the first threshold whose lower bound reaches the target and
    keep lowering it while the bound stays there (taking the last proven threshold anywhere
    would pick a lucky fluctuation). Without a proven one, the lowest threshold whose observed
    precision reaches the target.
    """
    proven = wilson_lower(k, n, confidence) >= target
    columns = np.arange(k.shape[1])
    has = proven.any(axis=1)
    first = np.argmax(proven, axis=1)
    failed = ~proven & (columns >= first[:, None])
    stop = np.where(failed.any(axis=1), np.argmax(failed, axis=1), k.shape[1]) - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = (k / n) >= target
    fallback = np.where(
        observed.any(axis=1), k.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1), -1
    )
    return np.where(has, stop, fallback)


def operating_point(
    y_true: Any,
    scores: Any,
    *,
    target_precision: float = 0.99,
    confidence: float = 0.95,
    min_positives: int = 10,
    n_bootstrap: int = 1000,
    name: str = "",
    random_state: Any = None,
    sample_weight: Any = None,
) -> OperatingPoint:
    """The threshold that reaches ``target_precision`` with proof, keeping as much recall as it can.

    The threshold is chosen by :func:`_select` on Wilson lower bounds; ``enough_evidence`` needs
    the bound at the chosen threshold to reach the target and ``min_positives`` true positives.
    The intervals are selection-aware basic-bootstrap intervals: each replicate re-runs the
    choice on a resample, and the gap between the replicate's precision at its own threshold
    and the original sample's precision there estimates the optimism of the choice.

    Parameters
    ----------
    y_true : array-like of bool, shape (n_samples,)
        Whether each case truly is positive.
    scores : array-like of float, shape (n_samples,)
        Higher means more likely positive (e.g. a class probability or a tier score).
    target_precision, confidence : float
    min_positives : int, default=10
    n_bootstrap : int, default=1000
    name : str
    random_state : int, Generator or None
    sample_weight : array-like of float, shape (n_samples,), optional
        Each case's weight (an evaluation sample's inverse inclusion probability). Precision and
        recall are weighted; the Wilson bounds and the bootstrap use effective counts (weights
        scaled to sum to Kish's effective sample size), so equal weights give the unweighted
        point exactly. ``n_positives``, ``n_predicted`` and ``n_true_positives`` stay raw counts.

    Returns
    -------
    OperatingPoint
    """
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(scores, dtype=float)
    n_samples, n_pos = len(y), int(y.sum())
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    w_sorted = effective_weights(sample_weight, n_samples)[order]
    n_eff, pos_eff = float(w_sorted.sum()), float(w_sorted[y_sorted].sum())
    # A cut is valid only at the end of a run of tied scores.
    ends = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True]) if n_samples else None
    base: dict[str, Any] = {
        "name": name,
        "target_precision": target_precision,
        "confidence": confidence,
        "n_samples": n_samples,
        "n_positives": n_pos,
    }
    i = -1
    if ends is not None:
        k, n_pred = np.cumsum(w_sorted * y_sorted)[ends], np.cumsum(w_sorted)[ends]
        i = int(_select(k[None, :], n_pred[None, :], target_precision, confidence)[0])
    if ends is None or i < 0:
        return OperatingPoint(
            **base,
            threshold=None,
            precision=None,
            precision_ci=None,
            precision_lower_bound=None,
            recall=None,
            recall_ci=None,
            n_predicted=0,
            n_true_positives=0,
            enough_evidence=False,
            reason=NO_THRESHOLD_REASON.format(target=target_precision),
            more_positives_needed=None,
            more_labels_needed=None,
        )
    n_i, k_i = float(n_pred[i]), float(k[i])
    p_i, lb_i = k_i / n_i, float(wilson_lower(k_i, n_i, confidence))
    reason = None
    more_pos: int | None = 0
    more_labels: int | None = 0
    if lb_i < target_precision:
        reason = UNPROVEN_REASON.format(lb=lb_i, target=target_precision, n=round(n_i))
        needed = positives_needed(p_i, target_precision, confidence)
        more_pos = None if needed is None else max(math.ceil(needed - n_i), 0)
        more_labels = None if more_pos is None else math.ceil(more_pos * n_eff / n_i)
    if n_pos < min_positives:
        reason = FEW_POSITIVES_REASON.format(n=n_pos, m=min_positives)
    precision_ci, recall_ci = _bootstrap(
        y_sorted, w_sorted, ends, k, n_pred, (p_i, k_i / pos_eff if n_pos else np.nan),
        target_precision, confidence, n_bootstrap, np.random.default_rng(random_state),
    )  # fmt: skip
    precision_ci = _union(precision_ci, _wilson_interval(k_i, n_i, confidence))
    if n_pos:
        recall_ci = _union(recall_ci, _wilson_interval(k_i, pos_eff, confidence))
    return OperatingPoint(
        **base,
        threshold=float(s_sorted[ends[i]]),
        precision=p_i,
        precision_ci=precision_ci,
        precision_lower_bound=lb_i,
        recall=k_i / pos_eff if n_pos else None,
        recall_ci=recall_ci,
        n_predicted=int(ends[i]) + 1,
        n_true_positives=int(y_sorted[: int(ends[i]) + 1].sum()),
        enough_evidence=reason is None,
        reason=reason,
        more_positives_needed=more_pos,
        more_labels_needed=more_labels,
    )


def _bootstrap(
    y_sorted: np.ndarray,
    w_sorted: np.ndarray,
    ends: np.ndarray,
    k: np.ndarray,
    n_pred: np.ndarray,
    estimate: tuple[float, float],
    target: float,
    confidence: float,
    n_bootstrap: int,
    rng: np.random.Generator,
) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """Selection-aware basic-bootstrap intervals of precision and recall (see operating_point)."""
    if n_bootstrap <= 0:
        return None, None
    n = len(y_sorted)
    gaps_p, gaps_r = [], []
    for start in range(0, n_bootstrap, 100):  # chunks bound memory at 100 x n_samples
        # Poisson(1) weights: the usual fast approximation of multinomial resampling.
        w = rng.poisson(1.0, size=(min(100, n_bootstrap - start), n)) * w_sorted
        kb = np.cumsum(w * y_sorted, axis=1)[:, ends]
        nb = np.cumsum(w, axis=1)[:, ends]
        j = _select(kb, nb, target, confidence)
        ok = j >= 0
        rows, j = np.flatnonzero(ok), j[ok]
        gaps_p.append(kb[rows, j] / nb[rows, j] - k[j] / n_pred[j])
        if k[-1] > 0:  # recall: replicate's at its threshold minus the sample's there
            gaps_r.append(kb[rows, j] / np.maximum(kb[rows, -1], 1e-12) - k[j] / k[-1])
    return (
        _basic_interval(estimate[0], np.concatenate(gaps_p), confidence),
        _basic_interval(estimate[1], np.concatenate(gaps_r), confidence) if gaps_r else None,
    )


def _wilson_interval(k: float, n: float, confidence: float) -> tuple[float, float]:
    """Two-sided Wilson interval at ``confidence``."""
    two_sided = 1.0 - (1.0 - confidence) / 2.0
    low = float(wilson_lower(k, n, two_sided))
    high = 1.0 - float(wilson_lower(n - k, n, two_sided))
    return low, high


def _union(a: tuple[float, float] | None, b: tuple[float, float]) -> tuple[float, float]:
    """Smallest interval holding both (the bootstrap one may be missing)."""
    return b if a is None else (min(a[0], b[0]), max(a[1], b[1]))


def _basic_interval(
    estimate: float, gaps: np.ndarray, confidence: float
) -> tuple[float, float] | None:
    gaps = gaps[np.isfinite(gaps)]
    if len(gaps) == 0 or not np.isfinite(estimate):
        return None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(gaps, [tail, 1.0 - tail])
    return float(np.clip(estimate - high, 0, 1)), float(np.clip(estimate - low, 0, 1))
