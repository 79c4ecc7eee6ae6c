"""Query strategies: valid distinct picks with reasons, modAL-equal measures, chunked pools."""

from __future__ import annotations

import numpy as np
import pytest
from modAL.uncertainty import classifier_entropy, classifier_margin, classifier_uncertainty
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression

from active_learning.ml import strategies as st

N_CLASSES = 4


@pytest.fixture(scope="module")
def pool() -> tuple[np.ndarray, np.ndarray, np.ndarray, LogisticRegression]:
    X, y = make_blobs(
        n_samples=400, centers=N_CLASSES, n_features=5, cluster_std=3.0, random_state=0
    )
    clf = LogisticRegression(max_iter=500).fit(X[:60], y[:60])
    return X, y, clf.predict_proba(X), clf


def _check_selection(sel: st.Selection, n_rows: int, k: int, *, proba_keys: bool) -> None:
    assert len(sel) == k
    assert np.unique(sel.indices).size == k
    assert sel.indices.min() >= 0 and sel.indices.max() < n_rows
    assert len(sel.reasons) == k and sel.scores.shape == (k,)
    for rank, reason in enumerate(sel.reasons):
        assert isinstance(reason["strategy"], str) and reason["strategy"]
        assert isinstance(reason["score"], float) and np.isfinite(reason["score"])
        assert reason["rank"] == rank
        if proba_keys:
            assert len(reason["classes"]) == 2 and len(reason["probas"]) == 2
            assert reason["classes"][0] != reason["classes"][1]
            assert reason["probas"][0] >= reason["probas"][1]


def _all_selections(
    X: np.ndarray, y: np.ndarray, proba: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> dict:
    members = st.fit_bagged_committee(X[:60], y[:60], n_members=3, random_state=0)
    member_proba = st.committee_member_proba(members, X, n_classes=N_CLASSES)
    return {
        "least_confidence": st.select_uncertainty(
            proba, k, measure="least_confidence", random_state=0, exclude=exclude
        ),
        "margin": st.select_uncertainty(
            proba, k, measure="margin", random_state=0, exclude=exclude
        ),
        "entropy": st.select_uncertainty(
            proba, k, measure="entropy", random_state=0, exclude=exclude
        ),
        "committee_ve": st.select_committee(
            member_proba, k, measure="vote_entropy", random_state=0, exclude=exclude
        ),
        "committee_kl": st.select_committee(
            member_proba, k, measure="kl", random_state=0, exclude=exclude
        ),
        "diversity": st.select_diverse(proba, X, k, random_state=0, exclude=exclude),
        "density": st.select_density_weighted(
            proba, X, k, n_clusters=8, random_state=0, exclude=exclude
        ),
    }


def test_every_strategy_returns_distinct_valid_indices_with_complete_reasons(pool) -> None:
    """Each strategy returns k distinct in-range rows, each with strategy, score, rank, top-two classes."""
    X, y, proba, _ = pool
    for sel in _all_selections(X, y, proba, 12).values():
        _check_selection(sel, X.shape[0], 12, proba_keys=True)
    _check_selection(
        st.select_random(X.shape[0], 12, random_state=0), X.shape[0], 12, proba_keys=False
    )


def test_excluded_rows_are_never_picked(pool) -> None:
    """Rows already labelled or queued (exclude) are never returned."""
    X, y, proba, _ = pool
    exclude = np.arange(0, 400, 2)
    for sel in [*_all_selections(X, y, proba, 10, exclude).values()]:
        assert not np.isin(sel.indices, exclude).any()
    mask = np.zeros(400, dtype=bool)
    mask[:390] = True
    sel = st.select_uncertainty(proba, 50, exclude=mask)
    assert sorted(sel.indices.tolist()) == list(range(390, 400))


def test_measures_equal_modal_classifier_outputs(pool) -> None:
    """least_confidence / margin / entropy on stored rows equal modAL's classifier_* on the fitted model."""
    X, _, proba, clf = pool
    np.testing.assert_allclose(st.least_confidence(proba), classifier_uncertainty(clf, X))
    np.testing.assert_allclose(st.margin(proba), classifier_margin(clf, X))
    np.testing.assert_allclose(st.entropy(proba), classifier_entropy(clf, X))


def test_selection_scores_equal_the_measure_of_the_picked_rows(pool) -> None:
    """Scores in a selection are the measure values of the picked rows, best first."""
    _, _, proba, _ = pool
    sel = st.select_uncertainty(proba, 10, measure="entropy")
    np.testing.assert_allclose(sel.scores, st.entropy(proba)[sel.indices])
    assert np.all(np.diff(sel.scores) <= 1e-12)
    assert sel.scores[0] == pytest.approx(st.entropy(proba).max())


def test_margin_picks_the_case_with_the_closest_top_two_probabilities() -> None:
    """Margin picks the row whose two best classes are closest, and names them with their probabilities."""
    proba = np.array(
        [
            [0.70, 0.20, 0.10],
            [0.34, 0.33, 0.33],  # high entropy, margin 0.01
            [0.02, 0.49, 0.49],  # margin 0.00: the pick
            [0.50, 0.45, 0.05],
        ]
    )
    sel = st.select_uncertainty(proba, 1, measure="margin")
    assert sel.indices.tolist() == [2]
    reason = sel.reasons[0]
    assert reason["strategy"] == "margin"
    assert reason["score"] == pytest.approx(0.0)
    assert sorted(reason["classes"]) == [1, 2]
    assert reason["probas"] == pytest.approx([0.49, 0.49])
    assert st.select_uncertainty(proba, 1, measure="entropy").indices.tolist() == [1]


def test_vote_entropy_matches_its_definition() -> None:
    """Vote entropy is the entropy of the members' hard-vote shares."""
    member_proba = np.array(
        [
            [[0.9, 0.1], [0.6, 0.4]],
            [[0.8, 0.2], [0.3, 0.7]],
        ]
    )
    np.testing.assert_allclose(st.vote_entropy(member_proba), [0.0, np.log(2)])
    assert st.kl_to_consensus(member_proba)[1] > st.kl_to_consensus(member_proba)[0]


def test_diversity_spreads_the_batch_over_clusters() -> None:
    """With two equally uncertain tight groups, the diverse batch takes from both."""
    rng = np.random.default_rng(0)
    X = np.vstack(
        [rng.normal(0, 0.01, (50, 2)), rng.normal(5, 0.01, (50, 2)), rng.normal(10, 1, (100, 2))]
    )
    proba = np.vstack([np.full((100, 2), 0.5), np.tile([0.95, 0.05], (100, 1))])
    proba[:50, 0] += rng.uniform(0, 1e-3, 50)  # the first group is slightly more uncertain...
    proba[:50, 1] = 1 - proba[:50, 0]
    sel = st.select_diverse(proba, X, 2, candidate_factor=50, random_state=0)
    assert sorted(int(i) // 50 for i in sel.indices) == [0, 1]
    plain = st.select_uncertainty(proba, 2, measure="margin", random_state=0)
    assert all(int(i) // 50 == 1 for i in plain.indices)  # ...so plain margin takes group 2 twice


def test_density_weighting_prefers_dense_regions() -> None:
    """Equally uncertain rows: the one in the dense region wins."""
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 0.1, (200, 2)), [[20.0, 20.0]]])
    proba = np.tile([0.9, 0.1], (201, 1))
    proba[0] = proba[200] = [0.5, 0.5]
    dens = st.centroid_density(X, n_clusters=5, random_state=0)
    assert dens[0] > dens[200]
    sel = st.select_density_weighted(proba, X, 1, measure="margin", density=dens)
    assert sel.indices.tolist() == [0]
    assert set(sel.reasons[0]) >= {"uncertainty", "density", "measure"}


def test_empty_and_exhausted_pools_raise_their_own_errors(pool) -> None:
    """An empty pool and a fully excluded pool raise StrategyError with the module's messages."""
    X, _, proba, _ = pool
    with pytest.raises(st.StrategyError, match=st.EMPTY_POOL):
        st.select_uncertainty(np.empty((0, 3)), 5)
    with pytest.raises(st.StrategyError, match=st.EMPTY_POOL):
        st.select_random(0, 5)
    everything = np.ones(400, dtype=bool)
    for call in (
        lambda: st.select_uncertainty(proba, 5, exclude=everything),
        lambda: st.select_random(400, 5, exclude=everything),
        lambda: st.select_diverse(proba, X, 5, exclude=np.arange(400)),
        lambda: st.select_density_weighted(proba, X, 5, exclude=everything),
        lambda: st.select_committee(np.stack([proba, proba]), 5, exclude=everything),
    ):
        with pytest.raises(st.StrategyError, match=st.POOL_EXHAUSTED):
            call()
    with pytest.raises(st.StrategyError):
        st.select_uncertainty(proba, 0)
    with pytest.raises(st.StrategyError):
        st.select_uncertainty(proba, 3, measure="nope")


def test_chunked_selection_equals_unchunked() -> None:
    """A large stored pool (memmap) is scanned in chunks: the same picks as one chunk (its memory
    budget is measured by bench/budgets.py)."""
    rng = np.random.default_rng(3)
    n, k = 200_000, 5
    logits = rng.normal(size=(n, k)).astype(np.float32)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    one = st.select_uncertainty(proba, 20, measure="margin", chunk_size=n, random_state=0)
    chunked = st.select_uncertainty(proba, 20, measure="margin", chunk_size=997, random_state=0)
    assert set(one.indices.tolist()) == set(chunked.indices.tolist())
    assert one.indices[0] == chunked.indices[0]

    sel = st.select_uncertainty(proba, 50, measure="entropy", chunk_size=1_000, random_state=0)
    assert len(sel) == 50
    np.testing.assert_allclose(sel.scores[0], st.entropy(proba).max(), rtol=1e-6)


def test_diverse_and_density_work_in_chunks() -> None:
    """Diversity and density with a tiny chunk size still return valid, complete selections."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(3_000, 8))
    proba = rng.dirichlet(np.ones(3), size=3_000)
    for sel in (
        st.select_diverse(proba, X, 10, chunk_size=128, random_state=0),
        st.select_density_weighted(proba, X, 10, chunk_size=128, n_clusters=10, random_state=0),
    ):
        _check_selection(sel, 3_000, 10, proba_keys=True)


def test_same_seed_same_picks(pool) -> None:
    """Randomness comes only from random_state."""
    X, _y, proba, _ = pool
    a = st.select_random(400, 10, random_state=7).indices
    b = st.select_random(400, 10, random_state=7).indices
    assert a.tolist() == b.tolist()
    d1 = st.select_diverse(proba, X, 8, random_state=1).indices
    d2 = st.select_diverse(proba, X, 8, random_state=1).indices
    assert d1.tolist() == d2.tolist()


def test_margin_uncertainty_is_one_minus_the_margin_and_zero_with_one_class() -> None:
    """The stored uncertainty is 1 - (p1 - p2), float32; one class is never uncertain."""
    from active_learning.ml.strategies.uncertainty import margin_uncertainty

    proba = np.array([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05], [0.4, 0.4, 0.2]])
    got = margin_uncertainty(proba)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [0.8, 0.15, 1.0], rtol=1e-6)
    np.testing.assert_allclose(got, st.informativeness(proba, "margin"), rtol=1e-6)
    assert margin_uncertainty(np.ones((3, 1))).tolist() == [0.0, 0.0, 0.0]
