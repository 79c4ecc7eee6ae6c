"""The strategy registry: each strategy's name, how it picks, and how its pick is said in words.

`STRATEGIES` holds one `StrategySpec` per project strategy (`labeling.models.Strategy`);
`REASONS` adds the picks no project strategy makes (cold start, random fills, evaluation). A *raw
reason* is the dict `ml` returns per pick (class *indices*, floats); `pick_reason` turns it into
the `labeling.contracts.PickReason` a queue item stores, both sentences written here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from active_learning.ml.strategies import (
    Selection,
    StrategyError,
    committee_member_proba,
    fit_bagged_committee,
    select_committee,
    select_density_weighted,
    select_diverse,
    select_random,
    select_uncertainty,
)
from active_learning.selectors import project_classes, training_set
from active_learning.services.embeddings import matrix_load
from labeling.contracts import NEUTRAL_REASON, PickReason
from labeling.models import LabelClass, Project

NO_TRAINING = "Query by committee needs the labelled training set."
RANDOM_STATE = 0


@dataclass(frozen=True)
class Pool:
    """The candidates a strategy picks from, and how many it picks.

    `proba` is (m, n_classes) stored probabilities and `X` (m, dim) embeddings of the same rows
    (an array, or anything indexable like one). `training` returns the labelled set as
    (X_train (t, dim), y (t,) class indices); only the committee calls it.
    """

    proba: np.ndarray
    X: Any
    n: int
    training: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None


SelectFn = Callable[[Pool], Selection]
# (raw reason with plain values, names of its classes in order, blind) -> sentence
SentenceFn = Callable[[Mapping[str, Any], Sequence[str], bool], str]


@dataclass(frozen=True)
class StrategySpec:
    """A strategy: `select` picks rows of a `Pool` (None for picks made elsewhere, e.g. cold
    start), `sentence` says why a pick was made (pure: plain values in, a string out)."""

    name: str
    select: SelectFn | None
    sentence: SentenceFn


# Sentences ------------------------------------------------------------------------------------


def _torn(reason: Mapping[str, Any], names: Sequence[str], who: str) -> str | None:
    """The sentence "<who> A (p) and B (q)." when the reason has two named classes."""
    probas = list(reason.get("probas") or ())
    if len(names) < 2 or len(probas) < 2:
        return None
    return f"{who} {names[0]} ({probas[0]:.2f}) and {names[1]} ({probas[1]:.2f})."


def sentence_random(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    return NEUTRAL_REASON


def sentence_uncertainty(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    """Least confidence, margin, entropy: the two classes the model hesitates between."""
    torn = _torn(reason, names, "The model is torn between")
    if torn is None:
        return "The model is unsure about this case."
    return "The model is torn between two classes." if blind else torn


def sentence_committee(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    """Query by committee: the members disagree; the consensus' two classes."""
    torn = _torn(reason, names, "The committee's models are torn between")
    if torn is None:
        return "The committee's models disagree about this case."
    return "The committee's models are torn between two classes." if blind else torn


def sentence_diversity(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    """Margin with k-means diversity: uncertain, and central to one group of the batch."""
    base = sentence_uncertainty(reason, names, blind)
    if "cluster" not in reason:
        return base
    return (
        base.removesuffix(".") + ", and it is the most central of one group of similar uncertain"
        " cases, picked so the batch covers different kinds of case."
    )


def sentence_density(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    """Entropy weighted by density: uncertain, and typical of the cases still to label.

    The pick is the best product, not the most uncertain case, so the classes are said as the
    model's hesitation, with both factors' numbers.
    """
    if "density" not in reason or "uncertainty" not in reason:
        return sentence_uncertainty(reason, names, blind)
    why = "picked for its uncertainty weighted by how typical it is of the cases still to label"
    if blind:
        return f"The model is unsure about this case; {why}."
    torn = _torn(reason, names, "The model hesitates between")
    head = torn.removesuffix(".") if torn else "The model is unsure about this case"
    measure = str(reason.get("measure") or "entropy").replace("_", " ")
    return (
        f"{head}; {why} ({measure} {reason['uncertainty']:.2f}, density {reason['density']:.2f})."
    )


def sentence_kmeans_medoid(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    size = int(reason.get("cluster_size") or 0)
    return f"A typical example of a cluster of {size:,} similar merchants."


def sentence_zero_shot(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    if names and not blind:
        return f"Closest to the description of {names[0]}."
    return "Close to the description of one of the classes."


def sentence_keyword_seed(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    keyword = reason.get("keyword")
    if keyword and not blind:  # a keyword can give the class away
        return f'Mentions "{keyword}", a keyword from the class guidelines.'
    return "Mentions a keyword from the class guidelines."


def sentence_example_neighbour(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    return "Close to an example in the class guidelines."


# Selection ------------------------------------------------------------------------------------


def _select_random(pool: Pool) -> Selection:
    return select_random(len(pool.proba), pool.n, random_state=RANDOM_STATE)


def _select_uncertainty(pool: Pool, *, measure: str) -> Selection:
    return select_uncertainty(pool.proba, pool.n, measure=measure, random_state=RANDOM_STATE)


def _select_committee(pool: Pool) -> Selection:
    """Query by bagging on the 10n most uncertain candidates (never the whole pool)."""
    if pool.training is None:
        raise StrategyError(NO_TRAINING)
    pre = select_uncertainty(
        pool.proba, min(len(pool.proba), 10 * pool.n), measure="margin", random_state=RANDOM_STATE
    )
    X_train, y = pool.training()
    members = fit_bagged_committee(X_train, y, n_members=5, random_state=RANDOM_STATE)
    n_classes = pool.proba.shape[1]
    member_proba = committee_member_proba(members, pool.X[pre.indices], n_classes=n_classes)
    picked = select_committee(member_proba, pool.n, random_state=RANDOM_STATE)
    return Selection(pre.indices[picked.indices], picked.scores, picked.reasons)


def _select_diverse(pool: Pool) -> Selection:
    return select_diverse(pool.proba, pool.X, pool.n, measure="margin", random_state=RANDOM_STATE)


def _select_density(pool: Pool) -> Selection:
    return select_density_weighted(
        pool.proba, pool.X, pool.n, measure="entropy", random_state=RANDOM_STATE
    )


def _specs(*specs: StrategySpec) -> dict[str, StrategySpec]:
    return {spec.name: spec for spec in specs}


STRATEGIES: dict[str, StrategySpec] = _specs(
    StrategySpec("random", _select_random, sentence_random),
    StrategySpec(
        "least_confidence",
        partial(_select_uncertainty, measure="least_confidence"),
        sentence_uncertainty,
    ),
    StrategySpec("margin", partial(_select_uncertainty, measure="margin"), sentence_uncertainty),
    StrategySpec("entropy", partial(_select_uncertainty, measure="entropy"), sentence_uncertainty),
    StrategySpec("committee", _select_committee, sentence_committee),
    StrategySpec("diversity", _select_diverse, sentence_diversity),
    StrategySpec("density", _select_density, sentence_density),
)

# Picks made outside a project strategy: cold start (`ml.coldstart`), and random items.
REASONS: dict[str, StrategySpec] = STRATEGIES | _specs(
    StrategySpec("kmeans_medoid", None, sentence_kmeans_medoid),
    StrategySpec("zero_shot", None, sentence_zero_shot),
    StrategySpec("keyword_seed", None, sentence_keyword_seed),
    StrategySpec("example_neighbour", None, sentence_example_neighbour),
    StrategySpec("evaluation", None, sentence_random),
)


def strategy_select(*, strategy: str, pool: Pool) -> Selection:
    """The picks of the project strategy `strategy` (a `labeling.models.Strategy` value)."""
    select = STRATEGIES[strategy].select
    assert select is not None  # every project strategy selects (tests check the registry)
    return select(pool)


# Reasons --------------------------------------------------------------------------------------

_OWN_KEYS = {"strategy", "score", "classes", "class_ids", "probas"}


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars become Python ones, floats keep 4 places."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def pick_reason(
    raw: Mapping[str, Any], *, class_ids: Sequence[int], names: Mapping[int, str]
) -> PickReason:
    """The stored reason of one pick, from `ml`'s raw reason.

    `class_ids[i]` is the LabelClass id of class index i (the model's column order); `names`
    maps LabelClass ids to the names shown. A raw reason may carry `classes` (indices) or,
    already translated, `class_ids`.
    """
    strategy = str(raw.get("strategy") or "")
    spec = REASONS.get(strategy)
    if "classes" in raw:
        ids = tuple(int(class_ids[int(i)]) for i in raw["classes"])
    else:
        ids = tuple(int(c) for c in raw.get("class_ids") or ())
    probas = tuple(round(float(p), 4) for p in raw.get("probas") or ())
    score = float(raw["score"]) if raw.get("score") is not None else None
    details = {str(k): _plain(v) for k, v in raw.items() if k not in _OWN_KEYS}
    facts = {**details, "strategy": strategy, "score": score, "probas": probas}
    shown = [names.get(c, "") for c in ids]
    shown = shown if all(shown) else []
    sentence_fn = spec.sentence if spec is not None else sentence_random
    return PickReason(
        strategy=strategy,
        sentence=sentence_fn(facts, shown, False),
        sentence_blind=sentence_fn(facts, shown, True),
        score=score,
        class_ids=ids,
        probas=probas,
        details=details,
    )


def class_names(classes: Sequence[LabelClass]) -> dict[int, str]:
    """LabelClass id -> the name a card shows (`display_name`, else `name`)."""
    return {int(c.pk): c.display_name or c.name for c in classes}


def committee_training(*, project: Project) -> tuple[np.ndarray, np.ndarray]:
    """The committee's training data: (X_train (t, dim), y (t,) class column indices)."""
    labels = training_set(project=project)
    matrix = matrix_load()
    X_train = np.asarray(matrix.vectors[matrix.rows_for(labels.hashes)])
    classes = project_classes(project=project)
    column = {c.pk: i for i, c in enumerate(classes)}  # classes are not sorted by id
    y = np.array([column[int(label)] for label in labels.labels], dtype=np.int64)
    return X_train, y
