"""Chunked nearest neighbours equal a brute-force argsort, own rows excluded."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning.ml.neighbours import top_k_similar


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
