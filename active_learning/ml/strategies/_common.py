"""Shared pieces of the query strategies: errors, the ``Selection`` result and chunked top-k.

Vocabulary: a *pool* has ``n`` rows; ``proba`` is ``(n, n_classes)`` stored probabilities, ``X`` is
``(n, dim)`` stored embeddings; ``exclude`` marks rows that may not be picked (labelled, queued).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from modAL.utils.selection import multi_argmax

DEFAULT_CHUNK_SIZE = 65_536

EMPTY_POOL = "The pool is empty: there is nothing to select from."
POOL_EXHAUSTED = "Every case in the pool is excluded: the pool is exhausted."
BAD_N_INSTANCES = "n_instances must be a positive integer, got {value!r}."
BAD_CHUNK_SIZE = "chunk_size must be a positive integer, got {value!r}."
BAD_PROBA = "proba must be a 2-D array of shape (n_samples, n_classes), got shape {shape}."
ROWS_MISMATCH = "{name} has {got} rows but the pool has {expected}."
BAD_EXCLUDE = "exclude must be a boolean mask of length n_samples or an array of row indices."
UNKNOWN_MEASURE = "Unknown measure {value!r}; expected one of {choices}."
BAD_PARAMETER = "{name} must be {expected}, got {value!r}."


class StrategyError(ValueError):
    """A query cannot be answered: empty or exhausted pool, or invalid arguments."""


@dataclass(frozen=True)
class Selection:
    """The picks of one query, best first.

    Attributes
    ----------
    indices : ndarray of shape (m,), int64
        Distinct pool row indices, in pick order (rank 0 first).
    scores : ndarray of shape (m,), float64
        The strategy's score of each pick (its meaning is given by ``reasons[i]["strategy"]``).
    reasons : list of dict, length m
        One reason per pick, as data. Always ``strategy`` (str), ``score`` (float) and ``rank``
        (int); strategies working on probabilities add ``classes`` (the two most probable class
        indices, most probable first) and ``probas`` (their probabilities); some add more keys.
    """

    indices: np.ndarray
    scores: np.ndarray
    reasons: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def check_n_instances(n_instances: int) -> int:
    """Return ``n_instances`` as int or raise ``StrategyError``."""
    if isinstance(n_instances, bool) or not isinstance(n_instances, int | np.integer):
        raise StrategyError(BAD_N_INSTANCES.format(value=n_instances))
    if n_instances < 1:
        raise StrategyError(BAD_N_INSTANCES.format(value=n_instances))
    return int(n_instances)


def check_chunk_size(chunk_size: int) -> int:
    """Return ``chunk_size`` as int or raise ``StrategyError``."""
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int | np.integer)
        or chunk_size < 1
    ):
        raise StrategyError(BAD_CHUNK_SIZE.format(value=chunk_size))
    return int(chunk_size)


def check_proba(proba: np.ndarray) -> np.ndarray:
    """Validate a stored probability pool of shape (n, n_classes) without copying it."""
    if not hasattr(proba, "ndim"):
        proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] < 1:
        raise StrategyError(BAD_PROBA.format(shape=getattr(proba, "shape", None)))
    if proba.shape[0] == 0:
        raise StrategyError(EMPTY_POOL)
    return proba


def check_rows(array: np.ndarray, n_rows: int, name: str) -> np.ndarray:
    """Check that ``array`` has ``n_rows`` rows (no copy)."""
    if not hasattr(array, "ndim"):
        array = np.asarray(array, dtype=np.float64)
    if array.shape[0] != n_rows:
        raise StrategyError(ROWS_MISMATCH.format(name=name, got=array.shape[0], expected=n_rows))
    return array


def available_mask(n_rows: int, exclude: np.ndarray | None) -> np.ndarray:
    """Boolean mask of shape (n_rows,): True where a row may be picked.

    ``exclude`` is a boolean mask of shape (n_rows,) or an array of row indices. Raises
    ``StrategyError`` for an empty pool or when every row is excluded.
    """
    if n_rows == 0:
        raise StrategyError(EMPTY_POOL)
    mask = np.ones(n_rows, dtype=bool)
    if exclude is not None:
        ex = np.asarray(exclude)
        if ex.dtype == bool:
            if ex.shape != (n_rows,):
                raise StrategyError(BAD_EXCLUDE)
            mask &= ~ex
        elif ex.size:
            if not np.issubdtype(ex.dtype, np.integer) or ex.min() < 0 or ex.max() >= n_rows:
                raise StrategyError(BAD_EXCLUDE)
            mask[ex.ravel()] = False
    if not mask.any():
        raise StrategyError(POOL_EXHAUSTED)
    return mask


def iter_chunks(n_rows: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` row ranges covering ``range(n_rows)``."""
    for start in range(0, n_rows, chunk_size):
        yield start, min(start + chunk_size, n_rows)


def chunked_top_k(
    priority_fn: Callable[[int, int], np.ndarray],
    available: np.ndarray,
    k: int,
    *,
    chunk_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Indices of the ``k`` available rows of highest priority, best first.

    Memory stays O(chunk_size + k): each chunk contributes its own top-k (modAL's
    ``multi_argmax``, an ``np.argpartition``), merged into a running top-k. Ties are broken
    at random through ``rng``.

    Parameters
    ----------
    priority_fn : callable ``(start, stop) -> ndarray of shape (stop - start,)``
        Higher is picked first.
    available : ndarray of shape (n,), bool
    k : int
    chunk_size : int
    rng : numpy Generator

    Returns
    -------
    ndarray of shape (min(k, available.sum()),), int64
    """
    best_idx = np.empty(0, dtype=np.int64)
    best_val = np.empty(0, dtype=np.float64)
    for start, stop in iter_chunks(available.shape[0], chunk_size):
        local = np.flatnonzero(available[start:stop])
        if local.size == 0:
            continue
        values = np.asarray(priority_fn(start, stop), dtype=np.float64)[local]
        m = min(k, local.size)
        top, top_val = multi_argmax(values, n_instances=m)
        best_idx = np.concatenate([best_idx, local[top] + start])
        best_val = np.concatenate([best_val, top_val])
        if best_idx.size > k:
            keep, best_val = multi_argmax(best_val, n_instances=k)
            best_idx = best_idx[keep]
    order = np.lexsort((rng.random(best_idx.size), -best_val))
    return best_idx[order]


def top_two(proba_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two most probable classes of each row and their probabilities.

    Parameters
    ----------
    proba_rows : ndarray of shape (m, n_classes)

    Returns
    -------
    classes : ndarray of shape (m, min(2, n_classes)), int64, most probable first
    probas : ndarray of shape (m, min(2, n_classes)), float64
    """
    rows = np.asarray(proba_rows, dtype=np.float64)
    width = min(2, rows.shape[1])
    order = np.argsort(-rows, axis=1, kind="stable")[:, :width]
    return order.astype(np.int64), np.take_along_axis(rows, order, axis=1)


def build_selection(
    strategy: str,
    indices: np.ndarray,
    scores: np.ndarray,
    *,
    proba_rows: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> Selection:
    """Assemble a ``Selection`` with one reason dict per pick.

    ``extra`` maps a reason key to an array of shape (m,) (e.g. cluster ids).
    """
    indices = np.asarray(indices, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    reasons: list[dict[str, Any]] = []
    if proba_rows is not None:
        classes, probas = top_two(proba_rows)
    for rank in range(indices.shape[0]):
        reason: dict[str, Any] = {"strategy": strategy, "score": float(scores[rank]), "rank": rank}
        if proba_rows is not None:
            reason["classes"] = [int(c) for c in classes[rank]]
            reason["probas"] = [float(p) for p in probas[rank]]
        for key, values in (extra or {}).items():
            value = values[rank]
            reason[key] = value.item() if isinstance(value, np.generic) else value
        reasons.append(reason)
    return Selection(indices=indices, scores=scores, reasons=reasons)
