"""Neighbour view of label errors: how the nearest cases in embedding space are labelled.

``X`` is ``(n, dim)`` embeddings, ``labels`` ``(n,)`` class indices; the result is a ``(n,
n_classes)`` similarity-weighted vote over each case's ``k`` nearest other cases, so
``1 - votes[i, labels[i]]`` is case i's neighbour disagreement.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from active_learning.ml.neighbours import RowReader, top_k_similar
from active_learning.ml.noise._common import BAD_LABELS, BAD_PARAMETER, EMPTY_INPUT, NoiseError

K_NEIGHBOURS = 10
# Above this many cases, neighbours are searched among a seeded sample of this many (still an
# exact search in that sample): an all-pairs search is quadratic, ~2 h single-threaded at 1M.
MAX_REFERENCE = 20_000
_QUERY_BLOCK = 2048  # query rows per top_k_similar call: a (block, chunk) float32 matrix
_CHUNK = 8192
# Added to every class's vote so a case with no positive-similarity neighbour gets the prior,
# not a division by zero; small enough not to move a real vote.
_SMOOTHING = 1e-3


def neighbour_label_votes(
    X: np.ndarray | RowReader,
    labels: np.ndarray,
    *,
    n_classes: int,
    k: int = K_NEIGHBOURS,
    max_reference: int = MAX_REFERENCE,
    random_state: int = 0,
    voters: np.ndarray | None = None,
    queries: np.ndarray | None = None,
) -> np.ndarray:
    """Similarity-weighted label distribution of each case's ``k`` nearest other cases.

    A weighted k-nearest-neighbour vote (Dudani, "The distance-weighted k-nearest-neighbor
    rule", 1976) as a label-noise signal: a case most of whose close neighbours carry another
    label is likely mislabelled, whatever a global classifier's boundary says (Bahri, Jiang &
    Gupta, "Deep k-NN for Noisy Labels", ICML 2020). Weights are the cosine similarities
    clipped at 0; the case itself is never its own neighbour. The search is exact, in row
    blocks (float32 matmul, top-k by ``argpartition``); above ``max_reference`` cases the
    searched set is a seeded sample of that size.

    Parameters
    ----------
    X : ndarray of shape (n, dim), or any object whose ``X[rows]`` (rows an int array) gives
        those rows as an ndarray: only the reference set and one block of queries are read at a
        time. Embeddings; normalised here, so the dot product is the cosine.
    labels : ndarray of shape (n,), int
    n_classes : int
    k : int
    max_reference : int
        Largest searched set.
    random_state : int
        Seed of the reference sample (unused when ``n <= max_reference``).
    voters : ndarray of shape (n,), bool, optional
        Cases whose labels may vote (e.g. not flagged by another view); default all. Only
        voters are searched, so each case still gets ``k`` votes.
    queries : ndarray of shape (q,), int, optional
        The rows to vote on (default all, in order); every row may still be a neighbour.

    Returns
    -------
    ndarray of shape (q, n_classes), float64 (q = n by default); rows sum to 1
    """
    labels = np.asarray(labels).astype(np.int64)
    n = labels.shape[0]
    if n == 0:
        raise NoiseError(EMPTY_INPUT)
    if labels.min() < 0 or labels.max() >= n_classes:
        raise NoiseError(BAD_LABELS.format(max_class=n_classes - 1))
    if k < 1:
        raise NoiseError(BAD_PARAMETER.format(name="k", expected=">= 1", value=k))
    pool = np.arange(n) if voters is None else np.flatnonzero(np.asarray(voters, dtype=bool))
    if pool.size > max_reference:
        reference = np.sort(
            np.random.default_rng(random_state).choice(pool, max_reference, replace=False)
        )
    else:
        reference = pool
    # The position of each row inside the reference set, -1 if absent: a case never votes for
    # itself.
    own = np.full(n, -1, dtype=np.int64)
    own[reference] = np.arange(reference.size)
    # Only the reference set and one query block are normalised at a time: a normalised copy of
    # a million 384-d rows alone would be 1.5 GB.
    R = _unit(X[reference])
    k_eff = min(k, reference.size - 1) if reference.size > 1 else 0
    asked = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
    q = asked.size
    votes = np.full((q, n_classes), _SMOOTHING / n_classes, dtype=np.float64)
    if k_eff == 0:
        return votes / votes.sum(axis=1, keepdims=True)
    read_rows = partial(_rows, R)
    ref_labels = labels[reference]
    for start in range(0, q, _QUERY_BLOCK):
        stop = min(q, start + _QUERY_BLOCK)
        block = asked[start:stop]
        sims, idx = top_k_similar(
            _unit(X[block]),
            read_rows,
            reference.size,
            k_eff,
            exclude=own[block],
            chunk_size=_CHUNK,
        )
        weight = np.clip(sims, 0.0, None).astype(np.float64)
        weight[idx < 0] = 0.0
        rows = np.repeat(np.arange(start, stop), k_eff)
        np.add.at(votes, (rows, ref_labels[np.maximum(idx, 0)].ravel()), weight.ravel())
    return votes / votes.sum(axis=1, keepdims=True)


def _unit(rows: np.ndarray) -> np.ndarray:
    """``rows`` as float32 with unit L2 norms (zero rows stay zero), so dot = cosine."""
    out = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(out / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _rows(X: np.ndarray, start: int, stop: int) -> np.ndarray:
    return X[start:stop]
