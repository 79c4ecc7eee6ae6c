"""The strategy registry: one entry per strategy, and every pick's sentences name its real cause."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression

from active_learning.ml.coldstart import kmeans_medoids, seed_rare_class, select_zero_shot
from active_learning.ml.strategies import StrategyError
from active_learning.reasons import TORN_MARGIN
from active_learning.strategies import (
    REASONS,
    STRATEGIES,
    Pool,
    pick_reason,
    strategy_select,
)
from labeling.contracts import NEUTRAL_REASON, PickReason
from labeling.models import Strategy

CLASS_IDS = [11, 12, 13, 14]  # LabelClass ids of class indices 0..3
NAMES = {11: "Gambling", 12: "Skill games", 13: "Crypto exchange", 14: "Ordinary shop"}
TORN = "The model is torn between Gambling (0.46) and Skill games (0.42)."


@pytest.fixture(scope="module")
def pool() -> Pool:
    X, y = make_blobs(n_samples=240, centers=4, n_features=6, cluster_std=4.0, random_state=0)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    proba = LogisticRegression(max_iter=500).fit(X[:40], y[:40]).predict_proba(X)
    return Pool(proba=proba, X=X, n=8, training=lambda: (X[:40], y[:40].astype(np.int64)))


def test_registry_covers_exactly_the_project_strategies() -> None:
    """Every Strategy choice has one entry that selects, and nothing else selects."""
    assert set(STRATEGIES) == set(Strategy.values)
    assert all(spec.name == name and spec.select for name, spec in STRATEGIES.items())
    assert {n for n, spec in REASONS.items() if spec.select is not None} == set(Strategy.values)


def test_registry_has_a_sentence_for_every_cold_start_pick() -> None:
    """Whatever ml.coldstart emits as a strategy has its own sentence."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    texts = ["dice and poker" if i % 10 == 0 else "shoes" for i in range(60)]
    picks = [
        kmeans_medoids(X, 4, random_state=0),
        select_zero_shot(X, rng.normal(size=(3, 5)), 4, random_state=0),
        seed_rare_class(X, 12, texts=texts, keywords=["poker"], random_state=0),
    ]
    emitted = {r["strategy"] for sel in picks for r in sel.reasons}
    assert emitted == {"kmeans_medoid", "zero_shot", "keyword_seed", "example_neighbour"}
    for name in emitted:
        assert REASONS[name].select is None
        reason = pick_reason({"strategy": name}, class_ids=CLASS_IDS, names=NAMES)
        assert reason.sentence != NEUTRAL_REASON


def _digits_free(text: str) -> bool:
    return re.search(r"\d", text) is None


@pytest.mark.parametrize("strategy", Strategy.values)
def test_each_strategy_picks_with_a_sentence_naming_its_real_cause(pool, strategy) -> None:
    """Run through the registry, every pick's reason is typed, JSON-clean and says why."""
    selection = strategy_select(strategy=strategy, pool=pool)
    assert len(selection) == pool.n
    for raw in selection.reasons:
        reason = pick_reason(raw, class_ids=CLASS_IDS, names=NAMES)
        stored = reason.to_json()
        assert json.loads(json.dumps(stored)) == stored  # plain JSON values, no numpy
        assert PickReason.from_json(stored) == reason
        assert reason.strategy == strategy
        assert all(round(p, 4) == p for p in reason.probas)
        blind = reason.sentence_blind
        assert _digits_free(blind) and not any(name in blind for name in NAMES.values())
        if strategy == Strategy.RANDOM:
            assert reason.sentence == NEUTRAL_REASON and "random" in reason.sentence
            assert reason.class_ids == ()
            continue
        assert "Drawn at random" not in reason.sentence
        assert "Drawn at random" not in blind
        # The two classes, in order, with the probabilities the reason stores.
        (a, b), (pa, pb) = reason.class_ids, reason.probas
        assert set(reason.class_ids) <= set(CLASS_IDS) and pa >= pb
        # "Torn" only while the two classes are close; past the margin the model leans to one.
        torn = pa - pb < TORN_MARGIN
        shown = f"{NAMES[a]} ({pa:.2f}) {'and' if torn else 'over'} {NAMES[b]} ({pb:.2f})"
        if strategy != Strategy.DIVERSITY or torn:
            assert shown in reason.sentence
        assert ("torn between" in reason.sentence) == torn
        if strategy == Strategy.DENSITY:
            details = reason.details
            head = "The model hesitates between" if torn else "The model leans to"
            assert reason.sentence.startswith(f"{head} {shown}; picked")
            assert "uncertainty weighted by how typical" in reason.sentence
            assert "uncertainty weighted by how typical" in blind
            numbers = f"(entropy {details['uncertainty']:.2f}, density {details['density']:.2f})"
            assert reason.sentence.endswith(numbers + ".")
        elif strategy == Strategy.COMMITTEE:
            head = "are torn between" if torn else "disagree about this case, though"
            assert reason.sentence.startswith(f"The committee's models {head}")
            assert "committee" in blind
        elif strategy == Strategy.DIVERSITY:
            assert "picked so the batch covers different kinds of case" in reason.sentence
            assert "picked so the batch covers different kinds of case" in blind
            assert reason.details["measure"] == "margin"
        elif torn:
            assert reason.sentence == f"The model is torn between {shown}."
            assert blind == "The model is torn between two classes."
        else:
            why = "picked as one of the least certain cases still to label."
            assert reason.sentence == f"The model leans to {shown}; {why}"
            assert blind == f"The model leans to one class; {why}"


def test_committee_without_training_data_is_an_error(pool) -> None:
    with pytest.raises(StrategyError, match="needs the labelled training set"):
        strategy_select(strategy="committee", pool=Pool(pool.proba, pool.X, 3))


def _said(raw: dict, *, blind: bool = False) -> str:
    return pick_reason(raw, class_ids=CLASS_IDS, names=NAMES).text(blind=blind)


def test_reason_sentences() -> None:
    """Today's wording for the existing reasons, now written on the model side."""
    torn = {"strategy": "entropy", "classes": [0, 1], "probas": [0.46, 0.42]}
    assert _said(torn) == TORN
    assert _said(torn, blind=True) == "The model is torn between two classes."
    medoid = {"strategy": "kmeans_medoid", "cluster_size": 84}
    assert _said(medoid) == "No model yet: a typical example of a cluster of 84 similar merchants."
    zero = {"strategy": "zero_shot", "classes": [0], "probas": [0.3]}
    assert _said(zero) == "No model yet: closest to the description of Gambling."
    assert "Gambling" not in _said(zero, blind=True)
    assert (
        _said({"strategy": "example_neighbour"}) == "Close to an example in the class guidelines."
    )
    keyword = {"strategy": "keyword_seed", "keyword": "poker"}
    assert _said(keyword) == 'Mentions "poker", a keyword from the class guidelines.'
    assert "poker" not in _said(keyword, blind=True)
    for neutral in ({}, {"strategy": "random"}, {"strategy": "evaluation"}, {"strategy": "x"}):
        assert _said(neutral) == _said(neutral, blind=True) == NEUTRAL_REASON


def test_density_and_diversity_sentences_from_constructed_reasons() -> None:
    """Density names uncertainty and density with their numbers; diversity its k-means group."""
    density = {
        "strategy": "density",
        "classes": [0, 1],
        "probas": [0.46, 0.42],
        "uncertainty": 0.9312,
        "density": 0.7071,
        "measure": "entropy",
    }
    why = "picked for its uncertainty weighted by how typical it is of the cases still to label"
    assert _said(density) == (
        f"The model hesitates between Gambling (0.46) and Skill games (0.42); {why}"
        " (entropy 0.93, density 0.71)."
    )
    assert _said(density, blind=True) == f"The model is unsure about this case; {why}."
    diverse = {"strategy": "diversity", "classes": [0, 1], "probas": [0.46, 0.42], "cluster": 3}
    assert _said(diverse).startswith(TORN.removesuffix(".") + ", and it is the most central")
    # Without its own facts (an evaluation item's champion facts), the plain uncertainty sentence.
    facts = {"strategy": "density", "classes": [0, 1], "probas": [0.46, 0.42]}
    assert _said(facts) == TORN
    committee = {"strategy": "committee", "classes": [1, 0], "probas": [0.5, 0.35]}
    assert _said(committee) == (
        "The committee's models are torn between Skill games (0.50) and Gambling (0.35)."
    )
    committee["probas"] = [0.5, 0.3]
    assert _said(committee) == (
        "The committee's models disagree about this case, though on average they lean to"
        " Skill games (0.50) over Gambling (0.30)."
    )


def test_pick_reason_stores_ids_rounded_probas_and_plain_values() -> None:
    """Class indices become LabelClass ids; numpy scalars become Python values."""
    raw = {
        "strategy": "density",
        "score": np.float32(0.25),
        "rank": 0,
        "classes": [np.int64(2), np.int64(0)],
        "probas": [np.float64(0.612345678), np.float32(0.2)],
        "uncertainty": np.float64(0.87654321),
        "density": np.float64(0.5),
        "measure": "entropy",
    }
    stored = pick_reason(raw, class_ids=CLASS_IDS, names=NAMES).to_json()
    assert stored["class_ids"] == [13, 11]
    assert stored["probas"] == [0.6123, 0.2]
    assert stored["details"] == {
        "rank": 0,
        "uncertainty": 0.8765,
        "density": 0.5,
        "measure": "entropy",
    }
    assert type(stored["score"]) is float
    assert json.loads(json.dumps(stored)) == stored
