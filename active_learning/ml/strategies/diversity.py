"""Batch diversity and density weighting on stored probabilities and embeddings.

``proba`` is ``(n, n_classes)``, ``X`` is ``(n, dim)`` float embeddings of the same rows. Nothing
here is O(n^2): k-means runs on a bounded candidate set or sample, density is measured against
k-means centroids chunk by chunk.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

from active_learning.ml.strategies._common import (
    BAD_PARAMETER,
    DEFAULT_CHUNK_SIZE,
    Selection,
    StrategyError,
    available_mask,
    build_selection,
    check_chunk_size,
    check_n_instances,
    check_proba,
    check_rows,
    chunked_top_k,
    iter_chunks,
)
from active_learning.ml.strategies.uncertainty import informativeness, measure_scores

_KMEANS_EXACT_MAX = 5_000


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def fit_kmeans(
    X: np.ndarray,
    n_clusters: int,
    *,
    sample_weight: np.ndarray | None = None,
    random_state: int | np.random.Generator | None = None,
) -> KMeans | MiniBatchKMeans:
    """k-means on ``X`` (m, dim): exact Lloyd up to 5,000 rows, mini-batch above."""
    rng = np.random.default_rng(random_state)
    model: KMeans | MiniBatchKMeans
    if X.shape[0] <= _KMEANS_EXACT_MAX:
        model = KMeans(n_clusters=n_clusters, n_init=3, random_state=_seed(rng))
    else:
        model = MiniBatchKMeans(
            n_clusters=n_clusters, n_init=3, batch_size=2048, random_state=_seed(rng)
        )
    return model.fit(X, sample_weight=sample_weight)


def squared_distances(X: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(m, dim) x (c, dim) -> (m, c)``, clipped at 0."""
    X = np.asarray(X, dtype=np.float64)
    c = np.asarray(centroids, dtype=np.float64)
    d2 = (X * X).sum(axis=1)[:, None] - 2.0 * X @ c.T + (c * c).sum(axis=1)[None, :]
    return np.maximum(d2, 0.0)


def select_diverse(
    proba: np.ndarray,
    X: np.ndarray,
    n_instances: int,
    *,
    measure: str = "margin",
    candidate_factor: int = 10,
    exclude: np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    random_state: int | np.random.Generator | None = None,
) -> Selection:
    """Diverse batch: k-means over the most uncertain candidates, one pick per cluster.

    The ``candidate_factor * n_instances`` most informative rows are preselected chunk by chunk,
    clustered into ``n_instances`` clusters by k-means weighted by informativeness, and from each
    cluster the candidate nearest its centroid is picked (Zhdanov 2019, "Diverse mini-batch
    active learning"; the batch-diversity idea of Brinker 2003).

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
    X : ndarray of shape (n, dim)
    n_instances : int
    measure : {"least_confidence", "margin", "entropy"}
    candidate_factor : int
    exclude : ndarray of shape (n,) bool, or of row indices, optional
    chunk_size : int
    random_state : int, Generator or None

    Returns
    -------
    Selection
        Reasons: ``strategy`` ("diversity"), ``measure``, ``score`` (the measure value, as in
        ``select_uncertainty``), ``rank``, ``cluster`` (0..n_instances-1), ``classes``/``probas``.
    """
    k = check_n_instances(n_instances)
    chunk_size = check_chunk_size(chunk_size)
    proba = check_proba(proba)
    X = check_rows(X, proba.shape[0], "X")
    if candidate_factor < 1:
        raise StrategyError(
            BAD_PARAMETER.format(name="candidate_factor", expected=">= 1", value=candidate_factor)
        )
    measure_scores(proba[:1], measure)  # validates the measure name
    available = available_mask(proba.shape[0], exclude)
    rng = np.random.default_rng(random_state)

    def priority(start: int, stop: int) -> np.ndarray:
        return informativeness(proba[start:stop], measure)

    candidates = chunked_top_k(
        priority, available, k * candidate_factor, chunk_size=chunk_size, rng=rng
    )
    k = min(k, candidates.size)
    cand_proba = np.asarray(proba[candidates], dtype=np.float64)
    weight = np.maximum(informativeness(cand_proba, measure), 1e-6)
    cand_X = np.asarray(X[candidates], dtype=np.float64)
    if k == candidates.size:
        chosen = np.arange(candidates.size)
        clusters = np.arange(candidates.size)
    else:
        km = fit_kmeans(cand_X, k, sample_weight=weight, random_state=rng)
        d2 = squared_distances(cand_X, km.cluster_centers_)
        assigned = d2.argmin(axis=1)
        chosen_list: list[int] = []
        cluster_list: list[int] = []
        for c in range(k):
            members = np.flatnonzero(assigned == c)
            if members.size:
                chosen_list.append(int(members[np.argmin(d2[members, c])]))
                cluster_list.append(c)
        # Empty clusters (rare): fill with the most informative unused candidates.
        for i in range(candidates.size):
            if len(chosen_list) >= k:
                break
            if i not in chosen_list:
                chosen_list.append(i)
                cluster_list.append(int(assigned[i]))
        chosen = np.asarray(chosen_list, dtype=np.int64)
        clusters = np.asarray(cluster_list, dtype=np.int64)
        order = np.argsort(-weight[chosen], kind="stable")
        chosen, clusters = chosen[order], clusters[order]
    rows = cand_proba[chosen]
    return build_selection(
        "diversity",
        candidates[chosen],
        measure_scores(rows, measure),
        proba_rows=rows,
        extra={"cluster": clusters, "measure": np.array([measure] * chosen.size, dtype=object)},
    )


def centroid_density(
    X: np.ndarray,
    *,
    n_clusters: int = 50,
    sample_size: int = 20_000,
    exclude: np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    random_state: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Density of each row, estimated against k-means centroids instead of all pairs.

    Settles & Craven (2008) weight uncertainty by a row's mean similarity to the pool, which is
    O(n^2). Here a mini-batch k-means on a sample of at most ``sample_size`` rows summarizes the
    pool, and ``density(x) = sum_c w_c exp(-||x - mu_c||^2 / h)`` with ``w_c`` the cluster's share
    and ``h`` the mean squared distance of the sample to its centroid: a kernel density estimate
    on the centroids, O(n * n_clusters).

    Parameters
    ----------
    X : ndarray of shape (n, dim)
    n_clusters : int
    sample_size : int
    exclude : rows left out of the k-means sample (they still get a density), optional
    chunk_size : int
    random_state : int, Generator or None

    Returns
    -------
    ndarray of shape (n,), float64, values in (0, 1]
    """
    chunk_size = check_chunk_size(chunk_size)
    rng = np.random.default_rng(random_state)
    available = available_mask(X.shape[0], exclude)
    rows = np.flatnonzero(available)
    if rows.size > sample_size:
        rows = np.sort(rng.choice(rows, size=sample_size, replace=False))
    sample = np.asarray(X[rows], dtype=np.float64)
    n_clusters = max(1, min(n_clusters, sample.shape[0]))
    km = fit_kmeans(sample, n_clusters, random_state=rng)
    centroids = km.cluster_centers_
    d2_sample = squared_distances(sample, centroids)
    assigned = d2_sample.argmin(axis=1)
    weights = np.bincount(assigned, minlength=n_clusters) / sample.shape[0]
    bandwidth = max(float(d2_sample[np.arange(sample.shape[0]), assigned].mean()), 1e-12)
    density = np.empty(X.shape[0], dtype=np.float64)
    for start, stop in iter_chunks(X.shape[0], chunk_size):
        d2 = squared_distances(X[start:stop], centroids)
        density[start:stop] = np.exp(-d2 / bandwidth) @ weights
    return density


def select_density_weighted(
    proba: np.ndarray,
    X: np.ndarray,
    n_instances: int,
    *,
    measure: str = "entropy",
    beta: float = 1.0,
    density: np.ndarray | None = None,
    n_clusters: int = 50,
    exclude: np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    random_state: int | np.random.Generator | None = None,
) -> Selection:
    """Information density: informativeness times density to the power ``beta``.

    Source: Settles & Craven (2008), "An analysis of active learning strategies for sequence
    labeling tasks" (information density); density from ``centroid_density`` unless given.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
    X : ndarray of shape (n, dim)
    n_instances : int
    measure : {"least_confidence", "margin", "entropy"}
    beta : float
    density : ndarray of shape (n,), optional
        Precomputed densities (e.g. stored with the pool); computed when missing.
    n_clusters : int
    exclude : ndarray of shape (n,) bool, or of row indices, optional
    chunk_size : int
    random_state : int, Generator or None

    Returns
    -------
    Selection
        Reasons: ``strategy`` ("density"), ``measure``, ``score`` (informativeness x density^beta),
        ``rank``, ``uncertainty`` (informativeness), ``density``, ``classes``/``probas``.
    """
    k = check_n_instances(n_instances)
    chunk_size = check_chunk_size(chunk_size)
    proba = check_proba(proba)
    X = check_rows(X, proba.shape[0], "X")
    measure_scores(proba[:1], measure)
    available = available_mask(proba.shape[0], exclude)
    rng = np.random.default_rng(random_state)
    if density is None:
        density = centroid_density(
            X, n_clusters=n_clusters, exclude=exclude, chunk_size=chunk_size, random_state=rng
        )
    density = check_rows(np.asarray(density, dtype=np.float64), proba.shape[0], "density")

    def priority(start: int, stop: int) -> np.ndarray:
        dens = density[start:stop]
        return informativeness(proba[start:stop], measure) * dens**beta

    picks = chunked_top_k(priority, available, k, chunk_size=chunk_size, rng=rng)
    rows = np.asarray(proba[picks], dtype=np.float64)
    info = informativeness(rows, measure)
    dens = density[picks]
    return build_selection(
        "density",
        picks,
        info * dens**beta,
        proba_rows=rows,
        extra={
            "uncertainty": info,
            "density": dens,
            "measure": np.array([measure] * picks.size, dtype=object),
        },
    )
