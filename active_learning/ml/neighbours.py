"""Nearest neighbours by dot product over a matrix read in row blocks (e.g. a memmap).

``X_query`` is ``(q, dim)``; the searched matrix has ``n_rows`` rows of the same ``dim``, read
block by block through ``read_rows(start, stop) -> (stop - start, dim)``. With L2-normalized
rows the dot product is the cosine similarity. Memory stays O(q * (chunk_size + k)).
`near_duplicate_groups` links rows of the same key whose cosine passes a threshold into groups.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from active_learning.ml.strategies._common import check_chunk_size, check_n_instances


class RowReader(Protocol):
    """A matrix read by rows: ``X[rows]`` (an int array) gives those rows as an ndarray.

    An ndarray is one; so is a reader that fetches the rows from a file on demand, where the
    caller should not hold a copy of every row (a million 384-d float32 rows are 1.5 GB).
    """

    def __getitem__(self, key: Any, /) -> Any: ...


def top_k_similar(
    X_query: np.ndarray,
    read_rows: Callable[[int, int], np.ndarray],
    n_rows: int,
    k: int,
    *,
    exclude: np.ndarray | None = None,
    chunk_size: int = 20_000,
    min_similarity: float | None = None,
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
    min_similarity : float, optional
        Only rows at least this similar qualify. A block's query rows with no such row skip
        the top-k merge, which halves the work when qualifying rows are rare (near-duplicates).

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
        hit: slice | np.ndarray = slice(None)
        if min_similarity is not None:
            sims[sims < min_similarity] = -np.inf
            hit = np.flatnonzero(~np.isneginf(sims).all(axis=1))
            sims = sims[hit]
        if sims.shape[1] > k:  # this block's best few, in linear time, then merge
            idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            sims = np.take_along_axis(sims, idx, axis=1)
        else:
            idx = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        all_sims = np.concatenate([best_sim[hit], sims], axis=1)
        all_idx = np.concatenate([best_idx[hit], idx + start], axis=1)
        keep = np.argsort(-all_sims, axis=1, kind="stable")[:, :k]
        best_sim[hit] = np.take_along_axis(all_sims, keep, axis=1)
        best_idx[hit] = np.take_along_axis(all_idx, keep, axis=1)
    best_idx[np.isneginf(best_sim)] = -1
    return best_sim, best_idx


GROUP_COSINE = 0.97
GROUP_MAX = 50
_QUERY_BLOCK = 1024  # query rows per top-k call: a (block, chunk) float32 similarity matrix
_GROUP_CHUNK = 8192
_NO_GROUP = np.zeros(0, dtype=np.int64)


def near_duplicate_groups(
    X: np.ndarray | RowReader,
    keys: np.ndarray,
    *,
    threshold: float = GROUP_COSINE,
    max_size: int = GROUP_MAX,
    chunk_size: int = _GROUP_CHUNK,
) -> list[np.ndarray]:
    """Groups of near-duplicate rows: same key, connected by cosine >= ``threshold``.

    Rows of one key whose similarity passes the threshold are linked (each row's ``max_size - 1``
    nearest rows of its key, by ``top_k_similar``), and the connected rows form a group. A row's
    group lists the other members, nearest first: all of them while the group has at most
    ``max_size`` members, else only its own linked neighbours (a chain of near-duplicates must
    not drag a decision to cases far from the one a reviewer read).

    Parameters
    ----------
    X : ndarray of shape (n, dim), or any object whose ``X[rows]`` (rows an int array) gives
        those rows as an ndarray (one key's rows are read at a time). Row vectors; normalised
        here, so the dot product is the cosine.
    keys : ndarray of shape (n,), int
        Rows group only with rows of the same key (e.g. the same given and suggested class);
        rows with a negative key are never grouped.
    threshold : float
    max_size : int, >= 2
    chunk_size : int
        Rows of a key compared at a time.

    Returns
    -------
    list of length n of ndarray of int64
        Row indices of the other members of row i's group, nearest first; empty for none.
    """
    keys = np.asarray(keys, dtype=np.int64)
    n = keys.shape[0]
    groups = [_NO_GROUP] * n
    k_max = max(1, int(max_size) - 1)
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    for bucket in np.split(order, bounds):
        m = bucket.size
        if m < 2 or keys[bucket[0]] < 0:
            continue
        Xb = _normalised(np.asarray(X[bucket], dtype=np.float32))
        read_rows = partial(_rows, Xb)
        k = min(k_max, m - 1)
        sims = np.empty((m, k), dtype=np.float32)
        idx = np.empty((m, k), dtype=np.int64)
        for start in range(0, m, _QUERY_BLOCK):
            stop = min(m, start + _QUERY_BLOCK)
            sims[start:stop], idx[start:stop] = top_k_similar(
                Xb[start:stop],
                read_rows,
                m,
                k,
                exclude=np.arange(start, stop, dtype=np.int64),
                chunk_size=chunk_size,
                min_similarity=threshold,
            )
        linked = sims >= threshold
        if not linked.any():
            continue
        src = np.repeat(np.arange(m), k)[linked.ravel()]
        dst = idx[linked]
        graph = coo_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(m, m))
        _, component = connected_components(graph, directed=False)
        sizes = np.bincount(component)
        for c in np.flatnonzero(sizes >= 2):
            members = np.flatnonzero(component == c)
            if members.size <= max_size:
                within = Xb[members] @ Xb[members].T
                np.fill_diagonal(within, -np.inf)
                ranked = np.argsort(-within, axis=1, kind="stable")[:, :-1]
                for row, near in zip(members, ranked, strict=True):
                    groups[int(bucket[row])] = bucket[members[near]]
            else:
                for row in members:
                    near = idx[row][linked[row]]
                    groups[int(bucket[row])] = bucket[near]
    return groups


def _rows(X: np.ndarray, start: int, stop: int) -> np.ndarray:
    return X[start:stop]


def _normalised(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)
