"""Cold start for a project without a model: k-means medoids, zero-shot and rare-class seeding.

``X`` is an ``(n, dim)`` array of pool embeddings (L2-normalized for the cosine-based functions),
``class_embeddings`` is ``(n_classes, dim)`` (embedded class descriptions). Results are
``Selection`` objects, as for the query strategies; everything runs chunk by chunk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from active_learning.ml.strategies._common import (
    BAD_PARAMETER,
    DEFAULT_CHUNK_SIZE,
    Selection,
    StrategyError,
    available_mask,
    build_selection,
    check_chunk_size,
    check_n_instances,
    check_rows,
    chunked_top_k,
    iter_chunks,
)
from active_learning.ml.strategies.diversity import fit_kmeans, squared_distances

NO_SEED_SOURCE = "Give keywords (with texts) or example embeddings to seed a class."
TEXTS_REQUIRED = "Keyword seeding needs the pool texts (one per row of X)."
BAD_CLASS_EMBEDDINGS = "class_embeddings must have shape (n_classes, {dim}), got {shape}."


def _as_2d(X: np.ndarray) -> np.ndarray:
    if not hasattr(X, "ndim"):
        X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise StrategyError(BAD_PARAMETER.format(name="X", expected="2-D", value=X.shape))
    return X


def _cosine(X: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Cosine similarity ``(m, dim) x (q, dim) -> (m, q)``."""
    X = np.asarray(X, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    xn = np.linalg.norm(X, axis=1, keepdims=True)
    qn = np.linalg.norm(Q, axis=1, keepdims=True)
    return (X / np.maximum(xn, 1e-12)) @ (Q / np.maximum(qn, 1e-12)).T


def kmeans_medoids(
    X: np.ndarray,
    n_instances: int,
    *,
    sample_size: int = 50_000,
    exclude: np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    random_state: int | np.random.Generator | None = None,
) -> Selection:
    """One representative per cluster: the pool row nearest each k-means centroid.

    k-means (mini-batch above 5,000 rows) is fitted on at most ``sample_size`` available rows;
    then one pass over the pool in chunks finds, per cluster, the nearest available row assigned
    to it (the medoid approximation). Ordered by cluster size, largest first.

    Parameters
    ----------
    X : ndarray of shape (n, dim)
    n_instances : int
        Number of clusters, hence of picks (fewer only if the pool is smaller).
    sample_size : int
    exclude : ndarray of shape (n,) bool, or of row indices, optional
    chunk_size : int
    random_state : int, Generator or None

    Returns
    -------
    Selection
        Reasons: ``strategy`` ("kmeans_medoid"), ``score`` (distance to the centroid), ``rank``,
        ``cluster``, ``cluster_size`` (pool rows assigned to the cluster).
    """
    k = check_n_instances(n_instances)
    chunk_size = check_chunk_size(chunk_size)
    X = _as_2d(X)
    available = available_mask(X.shape[0], exclude)
    rng = np.random.default_rng(random_state)
    rows = np.flatnonzero(available)
    k = min(k, rows.size)
    if rows.size > sample_size:
        rows = np.sort(rng.choice(rows, size=sample_size, replace=False))
    km = fit_kmeans(np.asarray(X[rows], dtype=np.float64), k, random_state=rng)
    best_d = np.full(k, np.inf)
    best_i = np.full(k, -1, dtype=np.int64)
    sizes = np.zeros(k, dtype=np.int64)
    for start, stop in iter_chunks(X.shape[0], chunk_size):
        local = np.flatnonzero(available[start:stop])
        if local.size == 0:
            continue
        d2 = squared_distances(X[start + local], km.cluster_centers_)
        assigned = d2.argmin(axis=1)
        dist = d2[np.arange(local.size), assigned]
        sizes += np.bincount(assigned, minlength=k)
        for c in np.unique(assigned):
            members = np.flatnonzero(assigned == c)
            j = members[np.argmin(dist[members])]
            if dist[j] < best_d[c]:
                best_d[c], best_i[c] = dist[j], start + local[j]
    found = np.flatnonzero(best_i >= 0)
    order = found[np.argsort(-sizes[found], kind="stable")]
    return build_selection(
        "kmeans_medoid",
        best_i[order],
        np.sqrt(best_d[order]),
        extra={"cluster": order, "cluster_size": sizes[order]},
    )


def zero_shot_scores(
    X: np.ndarray,
    class_embeddings: np.ndarray,
    *,
    temperature: float = 0.05,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """Zero-shot class probabilities: softmax of cosine similarity to each class description.

    Source: Yin, Hay & Roth (2019), "Benchmarking zero-shot text classification" (embedding
    similarity to label descriptions); the temperature sharpens the nearly flat cosines.

    Parameters
    ----------
    X : ndarray of shape (n, dim)
    class_embeddings : ndarray of shape (n_classes, dim)
    temperature : float
    chunk_size : int

    Returns
    -------
    ndarray of shape (n, n_classes), float64, rows sum to 1
    """
    X = _as_2d(X)
    chunk_size = check_chunk_size(chunk_size)
    C = np.asarray(class_embeddings, dtype=np.float64)
    if C.ndim != 2 or C.shape[1] != X.shape[1]:
        raise StrategyError(BAD_CLASS_EMBEDDINGS.format(dim=X.shape[1], shape=C.shape))
    if temperature <= 0:
        raise StrategyError(
            BAD_PARAMETER.format(name="temperature", expected="> 0", value=temperature)
        )
    out = np.empty((X.shape[0], C.shape[0]), dtype=np.float64)
    for start, stop in iter_chunks(X.shape[0], chunk_size):
        logits = _cosine(X[start:stop], C) / temperature
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        out[start:stop] = e / e.sum(axis=1, keepdims=True)
    return out


def select_zero_shot(
    X: np.ndarray,
    class_embeddings: np.ndarray,
    n_instances: int,
    *,
    exclude: np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    random_state: int | np.random.Generator | None = None,
) -> Selection:
    """Seed every class: round-robin over classes, each taking its most similar unused row.

    Parameters
    ----------
    X : ndarray of shape (n, dim)
    class_embeddings : ndarray of shape (n_classes, dim)
    n_instances : int
    exclude : ndarray of shape (n,) bool, or of row indices, optional
    chunk_size : int
    random_state : int, Generator or None

    Returns
    -------
    Selection
        Reasons: ``strategy`` ("zero_shot"), ``score`` (cosine similarity to the class
        description), ``rank``, ``classes`` ([the class it was picked for]) and ``probas``
        ([its zero-shot probability]).
    """
    k = check_n_instances(n_instances)
    chunk_size = check_chunk_size(chunk_size)
    X = _as_2d(X)
    C = np.asarray(class_embeddings, dtype=np.float64)
    if C.ndim != 2 or C.shape[1] != X.shape[1]:
        raise StrategyError(BAD_CLASS_EMBEDDINGS.format(dim=X.shape[1], shape=C.shape))
    available = available_mask(X.shape[0], exclude)
    rng = np.random.default_rng(random_state)
    k = min(k, int(available.sum()))
    # One pass over the pool: per chunk, every class keeps its running top-k rows.
    best_idx = [np.empty(0, dtype=np.int64) for _ in range(C.shape[0])]
    best_val = [np.empty(0, dtype=np.float64) for _ in range(C.shape[0])]
    for start, stop in iter_chunks(X.shape[0], chunk_size):
        local = np.flatnonzero(available[start:stop])
        if local.size == 0:
            continue
        sims_chunk = _cosine(X[start + local], C)
        m = min(k, local.size)
        for c in range(C.shape[0]):
            top = np.argpartition(-sims_chunk[:, c], m - 1)[:m]
            vals = np.concatenate([best_val[c], sims_chunk[top, c]])
            idxs = np.concatenate([best_idx[c], local[top] + start])
            keep = np.argpartition(-vals, min(k, vals.size) - 1)[:k]
            best_val[c], best_idx[c] = vals[keep], idxs[keep]
    ranked = [
        best_idx[c][np.lexsort((rng.random(best_idx[c].size), -best_val[c]))]
        for c in range(C.shape[0])
    ]
    picks: list[int] = []
    owners: list[int] = []
    taken: set[int] = set()
    cursor = [0] * C.shape[0]
    while len(picks) < k:
        progressed = False
        for c in range(C.shape[0]):
            while cursor[c] < ranked[c].size and int(ranked[c][cursor[c]]) in taken:
                cursor[c] += 1
            if cursor[c] < ranked[c].size and len(picks) < k:
                row = int(ranked[c][cursor[c]])
                picks.append(row)
                owners.append(c)
                taken.add(row)
                progressed = True
        if not progressed:
            break
    idx = np.asarray(picks, dtype=np.int64)
    own = np.asarray(owners, dtype=np.int64)
    sims = _cosine(X[idx], C)
    proba = zero_shot_scores(X[idx], C)
    sel = build_selection("zero_shot", idx, sims[np.arange(idx.size), own])
    for reason, c, p in zip(sel.reasons, own, proba[np.arange(idx.size), own], strict=True):
        reason["classes"] = [int(c)]
        reason["probas"] = [float(p)]
    return sel


def keyword_matches(texts: Sequence[str], keywords: Sequence[str]) -> np.ndarray:
    """Rows whose text contains any keyword (case-insensitive, whole words).

    Parameters
    ----------
    texts : sequence of str, length n
    keywords : sequence of str

    Returns
    -------
    ndarray of shape (n,), int64: the index of the first matching keyword, -1 for none
    """
    patterns = [
        re.compile(r"\b" + re.escape(w.strip()) + r"\b", re.IGNORECASE)
        for w in keywords
        if w.strip()
    ]
    out = np.full(len(texts), -1, dtype=np.int64)
    for i, text in enumerate(texts):
        for j, pattern in enumerate(patterns):
            if pattern.search(text):
                out[i] = j
                break
    return out


def seed_rare_class(
    X: np.ndarray,
    n_instances: int,
    *,
    texts: Sequence[str] | None = None,
    keywords: Sequence[str] | None = None,
    example_embeddings: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    random_state: int | np.random.Generator | None = None,
) -> Selection:
    """Find candidates of a rare class from keywords and/or example texts.

    Keyword hits come first (most similar to the examples, or to the hits' own centroid,
    first); the rest are nearest neighbours by cosine similarity (max over the examples and the
    keyword hits' centroid), found with a chunked top-k.

    Parameters
    ----------
    X : ndarray of shape (n, dim)
    n_instances : int
    texts : sequence of str, length n, optional (needed with ``keywords``)
    keywords : sequence of str, optional
    example_embeddings : ndarray of shape (q, dim), optional
        Embedded example texts of the class.
    exclude : ndarray of shape (n,) bool, or of row indices, optional
    chunk_size : int
    random_state : int, Generator or None

    Returns
    -------
    Selection
        Reasons: ``strategy`` ("keyword_seed" or "example_neighbour"), ``score`` (cosine
        similarity to the nearest query vector), ``rank``, and ``keyword`` (the matched keyword,
        or None).
    """
    k = check_n_instances(n_instances)
    chunk_size = check_chunk_size(chunk_size)
    X = _as_2d(X)
    if not keywords and example_embeddings is None:
        raise StrategyError(NO_SEED_SOURCE)
    available = available_mask(X.shape[0], exclude)
    rng = np.random.default_rng(random_state)
    queries = []
    if example_embeddings is not None:
        queries.append(np.atleast_2d(np.asarray(example_embeddings, dtype=np.float64)))
    hit_kw = np.full(X.shape[0], -1, dtype=np.int64)
    if keywords:
        if texts is None:
            raise StrategyError(TEXTS_REQUIRED)
        check_rows(np.empty((len(texts), 0)), X.shape[0], "texts")
        hit_kw = keyword_matches(texts, keywords)
        hits = np.flatnonzero((hit_kw >= 0) & available)
        if hits.size:
            queries.append(np.asarray(X[hits], dtype=np.float64).mean(axis=0, keepdims=True))
    Q = np.vstack(queries) if queries else np.empty((0, X.shape[1]))
    hits = np.flatnonzero((hit_kw >= 0) & available)
    hit_sims = _cosine(X[hits], Q).max(axis=1) if hits.size and Q.size else np.zeros(hits.size)
    hits = hits[np.lexsort((rng.random(hits.size), -hit_sims))][:k]
    picks: list[int] = [int(i) for i in hits]
    strategies = ["keyword_seed"] * len(picks)
    kws: list[str | None] = [str(keywords[hit_kw[i]]) if keywords else None for i in hits]
    if len(picks) < k and Q.size:
        rest = available.copy()
        rest[hits] = False
        if rest.any():

            def priority(start: int, stop: int) -> np.ndarray:
                return _cosine(X[start:stop], Q).max(axis=1)

            nn = chunked_top_k(priority, rest, k - len(picks), chunk_size=chunk_size, rng=rng)
            picks.extend(int(i) for i in nn)
            strategies.extend(["example_neighbour"] * nn.size)
            kws.extend([None] * nn.size)
    idx = np.asarray(picks, dtype=np.int64)
    scores = _cosine(X[idx], Q).max(axis=1) if Q.size and idx.size else np.zeros(idx.size)
    sel = build_selection("keyword_seed", idx, scores)
    for reason, strategy, kw in zip(sel.reasons, strategies, kws, strict=True):
        reason["strategy"] = strategy
        reason["keyword"] = kw
    return sel
