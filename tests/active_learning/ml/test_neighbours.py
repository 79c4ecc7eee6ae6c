"""Chunked nearest neighbours equal a brute-force argsort, own rows excluded; near-duplicate
groups link rows of one key above a cosine threshold."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning.ml.neighbours import near_duplicate_groups, top_k_similar


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    X = rng.normal(size=(n, dim))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _brute(Q: np.ndarray, M: np.ndarray, k: int, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sims = Q @ M.T
    for i, row in enumerate(own):
        if row >= 0:
            sims[i, row] = -np.inf
    idx = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, idx, axis=1), idx


@pytest.mark.parametrize("chunk_size", [7, 50, 1000])
def test_top_k_similar_equals_brute_force(chunk_size: int) -> None:
    """Any chunk size gives the brute-force top k, and a query never finds its own row."""
    rng = np.random.default_rng(0)
    M = _unit(rng, 300, 16)
    own = np.array([-1, 5, 299, 0, -1, 150])
    Q = np.vstack([_unit(rng, 1, 16), M[5], M[299], M[0], _unit(rng, 1, 16), M[150]])
    sims, idx = top_k_similar(
        Q, lambda a, b: M[a:b], M.shape[0], 6, exclude=own, chunk_size=chunk_size
    )
    want_sims, want_idx = _brute(Q, M, 6, own)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(sims, want_sims, rtol=1e-5)
    assert sims.dtype == np.float32 and idx.dtype == np.int64
    for i, row in enumerate(own):
        assert row not in idx[i]
    # Without the exclusion, a row's own vector is its nearest neighbour.
    _, plain = top_k_similar(Q, lambda a, b: M[a:b], M.shape[0], 1, chunk_size=chunk_size)
    assert plain[1, 0] == 5 and plain[2, 0] == 299


def test_top_k_similar_pads_when_the_matrix_is_small() -> None:
    """Fewer rows than k: the missing neighbours are -1 with similarity -inf."""
    rng = np.random.default_rng(1)
    M = _unit(rng, 3, 4)
    sims, idx = top_k_similar(M[:1], lambda a, b: M[a:b], 3, 5, exclude=np.array([0]))
    assert set(idx[0, :2].tolist()) == {1, 2}
    assert idx[0, 2:].tolist() == [-1, -1, -1] and np.isneginf(sims[0, 2:]).all()


@pytest.mark.parametrize("chunk_size", [7, 1000])
def test_min_similarity_keeps_only_rows_that_similar(chunk_size: int) -> None:
    """With a floor, the result is the brute-force top k cut at the floor (-1 / -inf below)."""
    rng = np.random.default_rng(2)
    M = _unit(rng, 200, 8)
    Q = M[:20]
    own = np.arange(20)
    want_sims, want_idx = _brute(Q, M, 4, own)
    floor = float(np.median(want_sims))
    sims, idx = top_k_similar(
        Q, lambda a, b: M[a:b], 200, 4, exclude=own, chunk_size=chunk_size, min_similarity=floor
    )
    below = want_sims < floor
    assert below.any() and (~below).any()  # the floor cuts through the results
    np.testing.assert_array_equal(idx, np.where(below, -1, want_idx))
    np.testing.assert_allclose(sims[~below], want_sims[~below], rtol=1e-5)
    assert np.isneginf(sims[below]).all()


def _near(rng: np.random.Generator, base: np.ndarray, scale: float) -> np.ndarray:
    return base + scale * rng.normal(size=base.shape)


def test_near_duplicates_of_one_key_form_a_group_nearest_first() -> None:
    """Rows linked above the threshold group (chains too); another key or a far row does not."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=16), rng.normal(size=16)
    X = np.vstack(
        [
            a,  # 0
            _near(rng, a, 0.02),  # 1: a's near-duplicate
            _near(rng, a, 0.05),  # 2: farther, still above 0.97
            a,  # 3: identical to 0, other key
            rng.normal(size=16),  # 4: unrelated, same key
            b,  # 5
            _near(rng, b, 0.01),  # 6
        ]
    )
    keys = np.array([1, 1, 1, 2, 1, 3, 3])
    groups = near_duplicate_groups(X, keys, threshold=0.97)
    assert groups[0].tolist() == [1, 2] and groups[1].tolist() == [0, 2]
    assert set(groups[2].tolist()) == {0, 1}
    assert groups[3].size == 0 and groups[4].size == 0  # other key; not similar
    assert groups[5].tolist() == [6] and groups[6].tolist() == [5]
    # Rows with a negative key are never grouped, even identical ones.
    assert near_duplicate_groups(X, np.array([-1, -1, 1, 2, 1, 3, 3]))[0].size == 0


def test_a_group_larger_than_the_cap_keeps_each_rows_nearest() -> None:
    """Past max_size members, a row's group is its own nearest linked rows, nearest first."""
    rng = np.random.default_rng(4)
    base = rng.normal(size=32)
    X = np.vstack([_near(rng, base, 0.01 * (i + 1)) for i in range(12)])
    groups = near_duplicate_groups(X, np.zeros(12, dtype=np.int64), threshold=0.9, max_size=5)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    for i, group in enumerate(groups):
        sims = Xn @ Xn[i]
        sims[i] = -np.inf
        assert group.tolist() == np.argsort(-sims, kind="stable")[:4].tolist()
