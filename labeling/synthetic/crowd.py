"""Simulated analysts and legacy label sources over generated records, for tests and benchmarks.

Classes are indices into ``category_names()``; a confusion matrix is ``(K, K)`` with row = true
class, column = label given, rows summing to 1. Analyst labels come back long-form (one row per
label, ``cases`` being positions in the input). Seeded and deterministic; no Django imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labeling.synthetic.taxonomy import category_names, neighbours_of

BAD_RATE = "{name} must be between 0 and 1, got {value!r}."
BAD_SHARES = "shares must be one non-negative weight per source with a positive sum, got {value!r}."
NO_SOURCES = "At least one legacy source is needed."


@dataclass(frozen=True, slots=True)
class SimulatedAnalyst:
    """A simulated analyst who labels a random ``share`` of cases.

    Right with probability ``accuracy``; a wrong answer goes to a declared neighbour of the true
    class (uniformly among them), or uniformly to any other class when it has none.
    ``accuracy=None`` is an analyst who answers uniformly at random (right 1/K of the time).
    """

    name: str
    accuracy: float | None
    share: float = 0.3


@dataclass(frozen=True, slots=True)
class AnalystLabels:
    """Long-form simulated analyst labels: ``cases``, ``analysts`` and ``labels``, all ``(m,)``."""

    cases: np.ndarray
    analysts: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True, slots=True)
class LegacySource:
    """A legacy source of given labels, wrong on a ``noise`` share of its cases.

    Of the wrong labels, ``neighbour_share`` go to a declared neighbour of the true class and the
    rest uniformly to any other class (all of them when the class has no neighbour).
    """

    name: str
    noise: float
    neighbour_share: float = 0.5


@dataclass(frozen=True, slots=True)
class LegacyLabels:
    """Each case's legacy source and given label, both ``(n,)``, and each source's confusion.

    ``confusion[name]`` is the exact ``(K, K)`` matrix the given labels were drawn from.
    """

    sources: np.ndarray
    given: np.ndarray
    confusion: dict[str, np.ndarray]


def class_indices(names: Sequence[str]) -> np.ndarray:
    """Class names as indices into ``category_names()``, shape ``(n,)``; ``KeyError`` if unknown."""
    index = {name: i for i, name in enumerate(category_names())}
    return np.fromiter((index[name] for name in names), dtype=np.int64, count=len(names))


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(BAD_RATE.format(name=name, value=value))


def _confusion(correct: float, neighbour: float) -> np.ndarray:
    """Row k: ``correct`` on k, ``neighbour`` spread over k's neighbours, the rest uniform.

    With no declared neighbour, the neighbour share joins the uniform part.
    """
    names = category_names()
    k = len(names)
    position = {name: i for i, name in enumerate(names)}
    matrix = np.zeros((k, k))
    for row, name in enumerate(names):
        near = [position[other] for other in neighbours_of(name)]
        wrong = 1.0 - correct
        to_near = min(neighbour, wrong) if near else 0.0
        matrix[row] = (wrong - to_near) / (k - 1)
        if near:
            matrix[row, near] += to_near / len(near)
        matrix[row, row] = correct
    return matrix


def analyst_confusion(analyst: SimulatedAnalyst) -> np.ndarray:
    """The ``(K, K)`` matrix a simulated analyst's labels are drawn from (row = true class)."""
    k = len(category_names())
    if analyst.accuracy is None:
        return np.full((k, k), 1.0 / k)
    _check_rate("accuracy", analyst.accuracy)
    return _confusion(analyst.accuracy, 1.0 - analyst.accuracy)


def source_confusion(source: LegacySource) -> np.ndarray:
    """The ``(K, K)`` matrix a legacy source's given labels are drawn from (row = true class)."""
    _check_rate("noise", source.noise)
    _check_rate("neighbour_share", source.neighbour_share)
    return _confusion(1.0 - source.noise, source.noise * source.neighbour_share)


def draw_labels(confusion: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per true class index in ``truth``, drawn from that class's row of ``confusion``
    (e.g. ``analyst_confusion(analyst)``: a simulated analyst answering cases one at a time)."""
    cumulative = np.cumsum(confusion, axis=1)[truth]
    drawn = (rng.random(truth.size)[:, None] >= cumulative).sum(axis=1)
    return np.minimum(drawn, confusion.shape[1] - 1)  # guards the row sum's rounding below 1


def simulate_analysts(
    true_labels: Sequence[str], analysts: Sequence[SimulatedAnalyst], *, seed: int
) -> AnalystLabels:
    """Labels from simulated analysts, each over their own seeded random share of the cases.

    Parameters
    ----------
    true_labels : sequence of str, length n
        The cases' true class names (e.g. ``[r.true_label for r in generate(n, seed)]``).
    analysts : sequence of SimulatedAnalyst
    seed : int
        Each analyst draws from their own child stream, so adding an analyst leaves the others'
        labels unchanged.

    Returns
    -------
    AnalystLabels
        Rows grouped by analyst in the given order, cases ascending within an analyst.
    """
    truth = class_indices(true_labels)
    streams = np.random.SeedSequence(seed).spawn(len(analysts))
    cases, names, labels = [], [], []
    for analyst, stream in zip(analysts, streams, strict=True):
        _check_rate("share", analyst.share)
        confusion = analyst_confusion(analyst)
        rng = np.random.default_rng(stream)
        picked = np.flatnonzero(rng.random(truth.size) < analyst.share)
        cases.append(picked)
        names.append(np.full(picked.size, analyst.name, dtype=object))
        labels.append(draw_labels(confusion, truth[picked], rng))
    if not analysts:
        return AnalystLabels(np.empty(0, np.int64), np.empty(0, object), np.empty(0, np.int64))
    return AnalystLabels(
        cases=np.concatenate(cases).astype(np.int64),
        analysts=np.concatenate(names),
        labels=np.concatenate(labels).astype(np.int64),
    )


def simulate_legacy_labels(
    true_labels: Sequence[str],
    sources: Sequence[LegacySource],
    shares: Sequence[float] | None = None,
    *,
    seed: int,
) -> LegacyLabels:
    """Give every case a legacy source (drawn by ``shares``) and a label from its confusion.

    Parameters
    ----------
    true_labels : sequence of str, length n
    sources : sequence of LegacySource, at least one
    shares : sequence of float, one per source, optional
        Relative weights of the sources (normalised); equal when omitted.
    seed : int

    Returns
    -------
    LegacyLabels
        ``sources`` (n,) source names, ``given`` (n,) class indices and each source's injected
        ``(K, K)`` confusion matrix, to compare a Dawid-Skene estimate against.
    """
    if not sources:
        raise ValueError(NO_SOURCES)
    weights = np.ones(len(sources)) if shares is None else np.asarray(shares, dtype=np.float64)
    if weights.shape != (len(sources),) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(BAD_SHARES.format(value=shares))
    truth = class_indices(true_labels)
    confusion = {source.name: source_confusion(source) for source in sources}
    rng = np.random.default_rng(seed)
    which = rng.choice(len(sources), size=truth.size, p=weights / weights.sum())
    given = np.empty(truth.size, dtype=np.int64)
    for i, source in enumerate(sources):
        mask = which == i
        given[mask] = draw_labels(confusion[source.name], truth[mask], rng)
    names = np.array([source.name for source in sources], dtype=object)
    return LegacyLabels(sources=names[which], given=given, confusion=confusion)
