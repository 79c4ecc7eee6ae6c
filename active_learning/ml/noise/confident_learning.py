"""Confident learning (Northcutt, Jiang & Chuang, JAIR 2021) on numpy.

The confident joint ``C[given, true]`` is ``(n_classes, n_classes)``; ``labels`` ``(n,)`` and
``pred_probs`` ``(n, n_classes)``. Written independently of cleanlab (AGPL-3.0); its numerical
constants are the paper's reference implementation's, so results match exactly.
"""

from __future__ import annotations

import numpy as np

from active_learning.ml.noise._common import (
    _FLOAT_EQ,
    _MISSING_CLASS_THRESHOLD,
    _THRESHOLD_FLOOR,
    _TINY,
    BAD_PARAMETER,
    FILTERS,
    RANKINGS,
    UNKNOWN_FILTER,
    UNKNOWN_RANKING,
    NoiseError,
    _check,
)


def confident_thresholds(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Per-class threshold ``t_j``: the mean self-confidence ``p(j|x)`` over rows labelled ``j``.

    Source: Northcutt et al. (2021), eq. (2). A class with no rows gets 2 (never confident).

    Parameters
    ----------
    labels : ndarray of shape (n,)
    pred_probs : ndarray of shape (n, n_classes)

    Returns
    -------
    ndarray of shape (n_classes,)
    """
    labels, pred_probs = _check(labels, pred_probs)
    k = pred_probs.shape[1]
    counts = np.bincount(labels, minlength=k)
    sums = np.bincount(labels, weights=pred_probs[np.arange(labels.size), labels], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(counts > 0, sums / np.maximum(counts, 1), _MISSING_CLASS_THRESHOLD)
    return np.clip(t, _THRESHOLD_FLOOR, None)


def _round_preserving_sum(values: np.ndarray) -> np.ndarray:
    """Round to integers so that the rounded values keep the (rounded) total."""
    floats = np.asarray(values, dtype=np.float64)
    ints = floats.round()
    target = np.sum(floats).round()
    current = np.sum(ints).round()
    while abs(current - target) > _FLOAT_EQ:
        diff = np.round(target - current)
        step = -1 if diff < 0 else 1
        changes = min(int(abs(diff)), floats.size)
        order = np.argsort(floats - ints)[::-step][:changes]
        for i in order:
            ints[i] += step
        current = np.sum(ints).round()
    return ints.astype(np.int64)


def _round_rows(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([_round_preserving_sum(row) for row in np.asarray(matrix, dtype=np.float64)])


def calibrate_confident_joint(joint: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Calibrate the confident joint so rows sum to the given-label counts and all to n.

    Source: Northcutt et al. (2021), eq. (3); integer rounding preserves each row's total.

    Parameters
    ----------
    joint : ndarray of shape (n_classes, n_classes), ``joint[given, true]``
    labels : ndarray of shape (n,)

    Returns
    -------
    ndarray of shape (n_classes, n_classes), int64
    """
    joint = np.asarray(joint, dtype=np.float64)
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=joint.shape[0])
    calibrated = (joint.T / np.clip(joint.sum(axis=1), _TINY, None) * counts).T
    calibrated = calibrated / np.clip(calibrated.sum(), _TINY, None) * counts.sum()
    return _round_rows(calibrated)


def _confident_assignment(
    labels: np.ndarray, pred_probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rows confidently counted and their guessed true label (argmax among confident classes)."""
    thresholds = confident_thresholds(labels, pred_probs)
    confident = pred_probs >= thresholds - _FLOAT_EQ
    n_confident = confident.sum(axis=1)
    guess = np.where(n_confident > 1, pred_probs.argmax(axis=1), confident.argmax(axis=1))
    return n_confident > 0, guess


def confident_joint(
    labels: np.ndarray, pred_probs: np.ndarray, *, calibrate: bool = True
) -> np.ndarray:
    """The confident joint ``C[given, true]``: counts of rows confidently in class ``true``.

    A row counts when its probability for some class ``j`` reaches ``t_j``; with several such
    classes the most probable one wins. The diagonal is at least 1. Source: Northcutt et al.
    (2021), §3.1, eq. (1)-(3).

    Parameters
    ----------
    labels : ndarray of shape (n,)
    pred_probs : ndarray of shape (n, n_classes)
    calibrate : bool
        Apply ``calibrate_confident_joint`` (the paper's calibrated ``C``).

    Returns
    -------
    ndarray of shape (n_classes, n_classes), int64
    """
    labels, pred_probs = _check(labels, pred_probs)
    k = pred_probs.shape[1]
    counted, guess = _confident_assignment(labels, pred_probs)
    joint = np.zeros((k, k), dtype=np.int64)
    np.add.at(joint, (labels[counted], guess[counted]), 1)
    np.fill_diagonal(joint, np.maximum(joint.diagonal(), 1))
    return calibrate_confident_joint(joint, labels) if calibrate else joint


def _keep_at_least(prune_counts: np.ndarray, n: int, frac_noise: float) -> np.ndarray:
    """Make the diagonal at least ``n`` (rows ``true``, columns ``given``) and scale noise."""
    diagonal = np.diagonal(prune_counts)
    new_diagonal = np.maximum(diagonal, n)
    diff = new_diagonal - diagonal
    n_noise = np.maximum(np.count_nonzero(prune_counts, axis=0) - 1.0, 1.0)
    new = prune_counts - diff / n_noise
    new[new < 0] = 0
    np.fill_diagonal(new, new_diagonal)
    reduced = new * frac_noise
    np.fill_diagonal(reduced, new.diagonal())
    np.fill_diagonal(reduced, new.diagonal() + np.sum(new - reduced, axis=0))
    return _round_rows(reduced.astype(np.int64))


def find_label_issues(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    filter_by: str = "prune_by_noise_rate",
    frac_noise: float = 1.0,
    min_examples_per_class: int = 1,
    joint: np.ndarray | None = None,
) -> np.ndarray:
    """Flag rows whose given label is probably wrong (confident learning).

    - ``prune_by_class``: in each given class ``i``, flag the ``n_i - C[i, i]`` rows of lowest
      self-confidence ``p(i|x)``.
    - ``prune_by_noise_rate``: for each off-diagonal ``C[i, j]``, flag that many rows labelled
      ``i`` with the largest margin ``p(j|x) - p(i|x)``.
    - ``both``: flagged by both. ``confident_learning``: the off-diagonal rows of ``C`` itself.

    Rows whose given label is also the most probable one are never flagged. Source: Northcutt et
    al. (2021), §3.2 (Prune by Class, Prune by Noise Rate, C+NR, C_confusion).

    Parameters
    ----------
    labels : ndarray of shape (n,)
    pred_probs : ndarray of shape (n, n_classes)
    filter_by : {"prune_by_noise_rate", "prune_by_class", "both", "confident_learning"}
    frac_noise : float in (0, 1]
        Share of the estimated noise to flag.
    min_examples_per_class : int
        Never leave a class with fewer rows than this.
    joint : ndarray of shape (n_classes, n_classes), optional
        A precomputed calibrated confident joint.

    Returns
    -------
    ndarray of shape (n,), bool
    """
    labels, pred_probs = _check(labels, pred_probs)
    if filter_by not in FILTERS:
        raise NoiseError(UNKNOWN_FILTER.format(value=filter_by, choices=FILTERS))
    if not 0 < frac_noise <= 1:
        raise NoiseError(
            BAD_PARAMETER.format(name="frac_noise", expected="in (0, 1]", value=frac_noise)
        )
    n, k = pred_probs.shape
    if filter_by == "confident_learning":
        counted, guess = _confident_assignment(labels, pred_probs)
        mask = counted & (guess != labels)
    else:
        if joint is None:
            joint = confident_joint(labels, pred_probs)
        prune = _keep_at_least(np.asarray(joint).T, min_examples_per_class, frac_noise)
        by_class = np.zeros(n, dtype=bool)
        by_rate = np.zeros(n, dtype=bool)
        for i in range(k):
            rows = np.flatnonzero(labels == i)
            if rows.size <= min_examples_per_class:
                continue
            p = pred_probs[rows]
            n_issues = rows.size - prune[i, i]
            if filter_by in ("prune_by_class", "both") and n_issues >= 1:
                by_class[rows[np.argsort(p[:, i])[:n_issues]]] = True
            if filter_by in ("prune_by_noise_rate", "both"):
                for j in range(k):
                    n_prune = prune[j, i]
                    if j != i and n_prune > 0:
                        by_rate[rows[np.argsort(-(p[:, j] - p[:, i]))[:n_prune]]] = True
        if filter_by == "prune_by_class":
            mask = by_class
        elif filter_by == "prune_by_noise_rate":
            mask = by_rate
        else:
            mask = by_class & by_rate
    nudged = pred_probs.copy()
    nudged[np.arange(n), labels] += _FLOAT_EQ
    mask[nudged.argmax(axis=1) == labels] = False
    return mask


def label_quality_scores(
    labels: np.ndarray, pred_probs: np.ndarray, *, method: str = "self_confidence"
) -> np.ndarray:
    """Label quality in [0, 1]; lower means the given label is more likely wrong.

    ``self_confidence`` is ``p(label|x)``; ``normalized_margin`` is
    ``(p(label|x) - max_{j != label} p(j|x) + 1) / 2``. Source: Northcutt et al. (2021), §3.2
    (ranking); Kuan & Mueller (2022), "Model-agnostic label quality scoring".

    Parameters
    ----------
    labels : ndarray of shape (n,)
    pred_probs : ndarray of shape (n, n_classes)
    method : {"self_confidence", "normalized_margin"}

    Returns
    -------
    ndarray of shape (n,)
    """
    labels, pred_probs = _check(labels, pred_probs)
    rows = np.arange(labels.size)
    self_conf = pred_probs[rows, labels]
    if method == "self_confidence":
        return self_conf
    if method == "normalized_margin":
        others = pred_probs.copy()
        others[rows, labels] = -np.inf
        return (self_conf - others.max(axis=1) + 1.0) / 2.0
    raise NoiseError(UNKNOWN_RANKING.format(value=method, choices=RANKINGS))


def rank_label_issues(
    mask: np.ndarray, labels: np.ndarray, pred_probs: np.ndarray, *, method: str = "self_confidence"
) -> np.ndarray:
    """Indices of the flagged rows, most likely wrong first (lowest label quality).

    Parameters
    ----------
    mask : ndarray of shape (n,), bool
    labels : ndarray of shape (n,)
    pred_probs : ndarray of shape (n, n_classes)
    method : {"self_confidence", "normalized_margin"}

    Returns
    -------
    ndarray of shape (mask.sum(),), int64
    """
    flagged = np.flatnonzero(np.asarray(mask, dtype=bool))
    scores = label_quality_scores(labels, pred_probs, method=method)[flagged]
    return flagged[np.argsort(scores, kind="stable")]
