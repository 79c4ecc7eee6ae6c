"""Random and uncertainty sampling on stored probabilities, measured with modAL.

``proba`` is an ``(n, n_classes)`` array of stored class probabilities (float, rows sum to 1;
an ``np.memmap`` works). Nothing is re-predicted: a small adapter hands the stored rows to modAL's
``classifier_*`` measures, one chunk at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from modAL.uncertainty import classifier_entropy, classifier_margin, classifier_uncertainty

from active_learning.ml.strategies._common import (
    DEFAULT_CHUNK_SIZE,
    UNKNOWN_MEASURE,
    Selection,
    StrategyError,
    available_mask,
    build_selection,
    check_chunk_size,
    check_n_instances,
    check_proba,
    chunked_top_k,
)

MEASURES = ("least_confidence", "margin", "entropy")


class StoredProbaClassifier:
    """Looks like a fitted classifier to modAL; ``predict_proba`` returns stored rows.

    ``X`` passed to ``predict_proba`` is an array of row indices into ``proba``.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
    """

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Stored probabilities of rows ``X``: (len(X),) indices -> (len(X), n_classes)."""
        return np.asarray(self.proba[np.asarray(X, dtype=np.int64).ravel()], dtype=np.float64)


def _rows(proba: np.ndarray) -> tuple[StoredProbaClassifier, np.ndarray]:
    proba = check_proba(proba)
    return StoredProbaClassifier(proba), np.arange(proba.shape[0])


def least_confidence(proba: np.ndarray) -> np.ndarray:
    """Least-confidence uncertainty ``1 - max_c p(c|x)``; higher is more informative.

    Source: Lewis & Gale (1994), "A sequential algorithm for training text classifiers"; Settles
    (2009), *Active Learning Literature Survey*, §3.1. Computed by modAL's
    ``classifier_uncertainty``.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)

    Returns
    -------
    ndarray of shape (n,)
    """
    return np.asarray(classifier_uncertainty(*_rows(proba)), dtype=np.float64)


def margin(proba: np.ndarray) -> np.ndarray:
    """Margin ``p(c1|x) - p(c2|x)`` between the two most probable classes; LOWER is more informative.

    Source: Scheffer, Decomain & Wrobel (2001), "Active hidden Markov models for information
    extraction"; Settles (2009), §3.1. Computed by modAL's ``classifier_margin`` (0 for one class).

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)

    Returns
    -------
    ndarray of shape (n,)
    """
    return np.asarray(classifier_margin(*_rows(proba)), dtype=np.float64)


def margin_uncertainty(proba: np.ndarray) -> np.ndarray:
    """``1 - (p1 - p2)``, the margin's complement per row; 1 means torn between two classes.

    Source: the margin of Scheffer, Decomain & Wrobel (2001); Settles (2009), §3.1. What each
    stored prediction keeps as its ``uncertainty``: plain numpy (a partial sort, no modAL adapter)
    for the million-row scoring pass, float32 like the column, and 0 (not 1) with one class, where
    there is nothing to be torn between. ``informativeness(proba, "margin")`` ranks rows the same.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)

    Returns
    -------
    ndarray of shape (n,), float32
    """
    if proba.shape[1] < 2:
        return np.zeros(proba.shape[0], dtype=np.float32)
    top2 = -np.partition(-proba, 1, axis=1)[:, :2]
    return (1.0 - (top2[:, 0] - top2[:, 1])).astype(np.float32)


def entropy(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy ``-sum_c p(c|x) log p(c|x)`` (nats); higher is more informative.

    Source: Shannon (1948); as a query measure Settles (2009), §3.1. Computed by modAL's
    ``classifier_entropy`` (scipy's ``entropy``, which renormalizes each row).

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)

    Returns
    -------
    ndarray of shape (n,)
    """
    return np.asarray(classifier_entropy(*_rows(proba)), dtype=np.float64)


_MEASURE_FNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "least_confidence": least_confidence,
    "margin": margin,
    "entropy": entropy,
}


def measure_scores(proba: np.ndarray, measure: str) -> np.ndarray:
    """The named measure of each row: ``(n, n_classes) -> (n,)`` (see ``MEASURES``)."""
    try:
        fn = _MEASURE_FNS[measure]
    except KeyError:
        raise StrategyError(UNKNOWN_MEASURE.format(value=measure, choices=MEASURES)) from None
    return fn(proba)


def informativeness(proba: np.ndarray, measure: str) -> np.ndarray:
    """The measure oriented so that higher is more informative (margin becomes ``1 - margin``).

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
    measure : {"least_confidence", "margin", "entropy"}

    Returns
    -------
    ndarray of shape (n,)
    """
    scores = measure_scores(proba, measure)
    return 1.0 - scores if measure == "margin" else scores


def select_random(
    n_rows: int,
    n_instances: int,
    *,
    exclude: np.ndarray | None = None,
    random_state: int | np.random.Generator | None = None,
) -> Selection:
    """Uniform random sample of available rows, without replacement.

    The reason's ``score`` is the probability each available row had of being drawn.

    Parameters
    ----------
    n_rows : int
        Pool size n.
    n_instances : int
    exclude : ndarray of shape (n,) bool, or of row indices, optional
    random_state : int, Generator or None

    Returns
    -------
    Selection
        ``min(n_instances, available)`` picks.
    """
    k = check_n_instances(n_instances)
    available = available_mask(int(n_rows), exclude)
    rng = np.random.default_rng(random_state)
    candidates = np.flatnonzero(available)
    k = min(k, candidates.size)
    picks = rng.choice(candidates, size=k, replace=False)
    scores = np.full(k, k / candidates.size)
    return build_selection("random", picks, scores)


def select_uncertainty(
    proba: np.ndarray,
    n_instances: int,
    *,
    measure: str = "margin",
    exclude: np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    random_state: int | np.random.Generator | None = None,
) -> Selection:
    """Pick the most uncertain rows by least confidence, margin or entropy.

    Works chunk by chunk (top-k per chunk with ``np.argpartition``), so a 1,000,000-row pool
    needs memory for one chunk only. Ties are broken at random. Margin sampling prefers the
    case whose top two classes are closest, i.e. the one where one label breaks a near tie.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
        Stored probabilities (may be a memmap).
    n_instances : int
    measure : {"least_confidence", "margin", "entropy"}
    exclude : ndarray of shape (n,) bool, or of row indices, optional
    chunk_size : int
    random_state : int, Generator or None

    Returns
    -------
    Selection
        Reasons carry ``strategy`` (= measure), ``score`` (the modAL measure value; for margin
        the gap p1 - p2, lower picked first), ``rank``, ``classes`` and ``probas`` (top two).
    """
    k = check_n_instances(n_instances)
    chunk_size = check_chunk_size(chunk_size)
    proba = check_proba(proba)
    if measure not in _MEASURE_FNS:
        raise StrategyError(UNKNOWN_MEASURE.format(value=measure, choices=MEASURES))
    available = available_mask(proba.shape[0], exclude)
    rng = np.random.default_rng(random_state)

    def priority(start: int, stop: int) -> np.ndarray:
        return informativeness(proba[start:stop], measure)

    picks = chunked_top_k(priority, available, k, chunk_size=chunk_size, rng=rng)
    rows = np.asarray(proba[picks], dtype=np.float64)
    return build_selection(measure, picks, measure_scores(rows, measure), proba_rows=rows)
