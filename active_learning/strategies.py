"""The strategy registry: each strategy's name, how it picks, and how its pick is said in words.

`STRATEGIES` holds one `StrategySpec` per project strategy (`labeling.models.Strategy`);
`REASONS` adds the picks no project strategy makes (cold start, random fills, evaluation). A *raw
reason* is the dict `ml` returns per pick (class *indices*, floats); `pick_reason` turns it into
the `labeling.contracts.PickReason` a queue item stores, both sentences written by
`active_learning.reasons` (light, so web processes can write reasons without this module).
"""

from __future__ import annotations

from collections.abc import Callable
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
from active_learning.reasons import SENTENCES, SentenceFn
from active_learning.reasons import class_names as class_names
from active_learning.reasons import pick_reason as pick_reason
from active_learning.selectors import project_classes, training_set
from active_learning.services.embeddings import embedded_only, matrix_load
from labeling.models import Project

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


@dataclass(frozen=True)
class StrategySpec:
    """A strategy: `select` picks rows of a `Pool` (None for picks made elsewhere, e.g. cold
    start), `sentence` says why a pick was made (pure: plain values in, a string out)."""

    name: str
    select: SelectFn | None
    sentence: SentenceFn


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


_SELECTS: dict[str, SelectFn] = {
    "random": _select_random,
    "least_confidence": partial(_select_uncertainty, measure="least_confidence"),
    "margin": partial(_select_uncertainty, measure="margin"),
    "entropy": partial(_select_uncertainty, measure="entropy"),
    "committee": _select_committee,
    "diversity": _select_diverse,
    "density": _select_density,
}
STRATEGIES: dict[str, StrategySpec] = _specs(
    *(StrategySpec(name, select, SENTENCES[name]) for name, select in _SELECTS.items())
)

# Picks made outside a project strategy: cold start (`ml.coldstart`), random items, evaluation.
REASONS: dict[str, StrategySpec] = STRATEGIES | _specs(
    *(StrategySpec(name, None, fn) for name, fn in SENTENCES.items() if name not in STRATEGIES)
)


def strategy_select(*, strategy: str, pool: Pool) -> Selection:
    """The picks of the project strategy `strategy` (a `labeling.models.Strategy` value)."""
    select = STRATEGIES[strategy].select
    assert select is not None  # every project strategy selects (tests check the registry)
    return select(pool)


def committee_training(*, project: Project) -> tuple[np.ndarray, np.ndarray]:
    """The committee's training data: (X_train (t, dim), y (t,) class column indices)."""
    labels = embedded_only(training_set(project=project))
    matrix = matrix_load()
    X_train = np.asarray(matrix.vectors[matrix.rows_for(labels.hashes)])
    classes = project_classes(project=project)
    column = {c.pk: i for i, c in enumerate(classes)}  # classes are not sorted by id
    y = np.array([column[int(label)] for label in labels.labels], dtype=np.int64)
    return X_train, y
