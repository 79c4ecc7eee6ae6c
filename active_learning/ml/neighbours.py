"""Nearest neighbours by dot product over a matrix read in row blocks (e.g. a memmap).

``X_query`` is ``(q, dim)``; the searched matrix has ``n_rows`` rows of the same ``dim``, read
block by block through ``read_rows(start, stop) -> (stop - start, dim)``. With L2-normalized
rows the dot product is the cosine similarity. Memory stays O(q * (chunk_size + k)).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from active_learning.ml.strategies._common import check_chunk_size, check_n_instances


def top_k_similar(
    X_query: np.ndarray,
    read_rows: Callable[[int, int], np.ndarray],
    n_rows: int,
    k: int,
    *,
    exclude: np.ndarray | None = None,
    chunk_size: int = 20_000,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows most similar to each query row, most similar first.

    Each block contributes its own top-k (``np.argpartition``, linear time), merged into a
    running top-k.

    Parameters
    ----------
    X_query : ndarray of shape (q, dim)
    read_rows : callable ``(start, stop) -> ndarray of shape (stop - start, dim)``
    n_rows : int
        Rows of the searched matrix.
    k : int
    exclude : ndarray of shape (q,), int, optional
        A row that may not be query i's neighbour (its own row), or -1 for none.
    chunk_size : int

    Returns
    -------
    sims : ndarray of shape (q, k), float32
        Similarities, best first; ``-inf`` where fewer than ``k`` rows qualify.
    idx : ndarray of shape (q, k), int64
        Row indices into the searched matrix; -1 where fewer than ``k`` rows qualify.
    """
    k = check_n_instances(k)
    chunk_size = check_chunk_size(chunk_size)
    X_query = np.asarray(X_query)
    q = X_query.shape[0]
    own = np.full(q, -1, dtype=np.int64) if exclude is None else np.asarray(exclude, np.int64)
    best_sim = np.full((q, k), -np.inf, dtype=np.float32)
    best_idx = np.full((q, k), -1, dtype=np.int64)
    for start in range(0, int(n_rows), chunk_size):
        stop = min(start + chunk_size, int(n_rows))
        sims = np.asarray(X_query @ np.asarray(read_rows(start, stop)).T, dtype=np.float32)
        mine = np.flatnonzero((own >= start) & (own < stop))
        sims[mine, own[mine] - start] = -np.inf
        if sims.shape[1] > k:  # this block's best few, in linear time, then merge
            idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            sims = np.take_along_axis(sims, idx, axis=1)
        else:
            idx = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        all_sims = np.concatenate([best_sim, sims], axis=1)
        all_idx = np.concatenate([best_idx, idx + start], axis=1)
        keep = np.argsort(-all_sims, axis=1, kind="stable")[:, :k]
        best_sim = np.take_along_axis(all_sims, keep, axis=1)
        best_idx = np.take_along_axis(all_idx, keep, axis=1)
    best_idx[np.isneginf(best_sim)] = -1
    return best_sim, best_idx
