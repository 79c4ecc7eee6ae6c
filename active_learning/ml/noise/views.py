"""Label-error detection from three views combined: embedding model, neighbours, lexical model.

``embeddings`` ``(n, dim)``, ``texts`` (n strings) and ``labels`` ``(n,)`` describe the same cases;
every array of the returned ``Detection`` is aligned with them. A view is a ``(n, n_classes)``
probability matrix; its *disagreement* with a case is ``1 - proba[i, labels[i]]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from active_learning.ml.neighbours import RowReader
from active_learning.ml.noise._common import (
    BAD_PARAMETER,
    SHAPE_MISMATCH,
    EstimatorLike,
    NoiseError,
    _check,
    best_other,
)
from active_learning.ml.noise.confident_learning import find_label_issues
from active_learning.ml.noise.iterative import find_label_issues_iterative
from active_learning.ml.noise.lexical import lexical_out_of_fold_proba
from active_learning.ml.noise.neighbours import K_NEIGHBOURS, MAX_REFERENCE, neighbour_label_votes

VIEWS = ("embedding", "neighbours", "lexical")
# Weights of the views in the combination: the embedding model is the strongest single view on
# every bench setting, the neighbours the weakest (bench/noise_detection.py).
VIEW_WEIGHTS = (2.0, 0.5, 1.0)
# Columns of ``Detection.signals``, the reviewer model's inputs (with class and source).
SIGNALS = (
    "self_confidence_embedding",
    "margin_embedding",
    "neighbour_disagreement",
    "self_confidence_lexical",
    "margin_lexical",
    "combined_score",
)
COMBINES = ("geometric", "rank", "mean")
# Above this many cases the auxiliary views (neighbours, wording) check only the cases the
# embedding view doubts most, this many of them; the rest keep the embedding view's verdict.
# Their cost is per case checked (a reference search, hashed n-grams): at 1,000,000 cases all of
# them would cost ~8x the embedding view (bench/pipeline.py), while no review team gets through
# more than the top few thousand.
AUX_MAX_ROWS = 50_000
# Randomly drawn unchecked cases added to the wording model's training rows, so that it also
# learns from the cases the embedding view is sure of (they are not predicted).
AUX_CONTEXT_ROWS = 10_000
# Added to both probabilities of ``contender_score``'s ratio: below about this level a class's
# probability is noise, and a label given 1e-6 must not outrank one given 1e-3 for that alone.
CONTENDER_SMOOTHING = 0.01
# Lowest probability a view may give a class in the geometric mean: one view's zero (a kNN vote
# no neighbour cast) must not veto a class outright.
_FLOOR = 1e-4
UNKNOWN_COMBINE = "Unknown combine {value!r}; expected one of {choices}."


@dataclass(frozen=True)
class Detection:
    """Per-case result of ``detect_label_issues``, every array aligned with the input rows.

    Attributes
    ----------
    score : ndarray of shape (n,), float64
        Combined score in [0, 1] (``contender_score``): higher is more likely wrong.
    flagged : ndarray of shape (n,), bool
        Confident learning's prune set on the combined probabilities.
    suggested : ndarray of shape (n,), int64
        Most probable class under the combined probabilities (may be the given label).
    suggested_p : ndarray of shape (n,), float64
        Its combined probability.
    agrees : ndarray of shape (n, len(VIEWS)), bool
        Whether each view's own most probable class is ``suggested``.
    signals : ndarray of shape (n, len(SIGNALS)), float64
        The views' signals, columns named by ``SIGNALS``.
    pred_probs : ndarray of shape (n, n_classes), float64
        The combined probabilities (see ``combine_views``).
    """

    score: np.ndarray
    flagged: np.ndarray
    suggested: np.ndarray
    suggested_p: np.ndarray
    agrees: np.ndarray
    signals: np.ndarray
    pred_probs: np.ndarray

    def agreeing_views(self, i: int) -> list[str]:
        """Names of the views whose top class for row ``i`` is the suggestion."""
        return [v for v, a in zip(VIEWS, self.agrees[i], strict=True) if a]


def detect_label_issues(
    embeddings: np.ndarray,
    texts: Sequence[str],
    labels: np.ndarray,
    *,
    n_classes: int,
    seed: int = 0,
    rounds: int = 2,
    estimator: EstimatorLike = None,
    k: int = K_NEIGHBOURS,
    max_reference: int = MAX_REFERENCE,
    combine: str = "geometric",
    max_rows: int = AUX_MAX_ROWS,
) -> Detection:
    """Score, flag and suggest a correction for every case from three views of the data.

    The views: (1) today's detector, out-of-fold logistic regression on the embeddings with
    ``rounds`` of confident learning (``find_label_issues_iterative``, ``filter_by="both"``);
    (2) the similarity-weighted labels of the ``k`` nearest cases (``neighbour_label_votes``);
    (3) an out-of-fold word and character n-gram model (``lexical_out_of_fold_proba``); (2)
    and (3) as ``auxiliary_views`` computes them. The views are combined by ``combine_views``.

    Parameters
    ----------
    embeddings : ndarray of shape (n, dim)
    texts : sequence of str, length n
    labels : ndarray of shape (n,), int class indices
    n_classes : int
    seed : int
        Seeds every fold split and sample, so the same input gives the same result.
    rounds : int
        Confident-learning rounds of the embedding view (2 is today's detector).
    estimator : sklearn classifier or factory, optional
        Embedding view's model (default ``LogisticRegression(C=10)``).
    k, max_reference : int
        See ``neighbour_label_votes``.
    combine : {"geometric", "rank", "mean"}
    max_rows : int
        See ``auxiliary_rows``.

    Returns
    -------
    Detection
    """
    if combine not in COMBINES:
        raise NoiseError(UNKNOWN_COMBINE.format(value=combine, choices=COMBINES))
    labels = np.asarray(labels).astype(np.int64)
    if len(texts) != labels.shape[0]:
        raise NoiseError(SHAPE_MISMATCH.format(n_labels=labels.shape[0], n_rows=len(texts)))
    embedding_mask, embedding_proba = find_label_issues_iterative(
        embeddings,
        labels,
        n_classes=n_classes,
        estimator=estimator,
        rounds=rounds,
        filter_by="both",
        random_state=seed,
    )
    votes, lexical, checked = auxiliary_views(
        embeddings,
        lambda rows: [texts[i] for i in rows],
        labels,
        n_classes=n_classes,
        embedding_proba=embedding_proba,
        embedding_mask=embedding_mask,
        seed=seed,
        k=k,
        max_reference=max_reference,
        max_rows=max_rows,
    )
    return combine_views(
        labels, [embedding_proba, votes, lexical], combine=combine, checked=checked
    )


def auxiliary_rows(embedding_proba: np.ndarray, labels: np.ndarray, *, max_rows: int) -> np.ndarray:
    """The rows the auxiliary views check: all of them up to ``max_rows``, else the ``max_rows``
    with the lowest embedding-view probability of their label (ties by row), in row order."""
    labels = np.asarray(labels).astype(np.int64)
    n = labels.shape[0]
    if n <= max_rows:
        return np.arange(n)
    given = embedding_proba[np.arange(n), labels]
    return np.sort(np.argsort(given, kind="stable")[:max_rows])


def auxiliary_views(
    embeddings: np.ndarray | RowReader,
    texts_of: Callable[[np.ndarray], Sequence[str]],
    labels: np.ndarray,
    *,
    n_classes: int,
    embedding_proba: np.ndarray,
    embedding_mask: np.ndarray,
    seed: int = 0,
    k: int = K_NEIGHBOURS,
    max_reference: int = MAX_REFERENCE,
    max_rows: int = AUX_MAX_ROWS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The neighbour and lexical views, computed on the ``auxiliary_rows``.

    Cases the embedding view flags (``embedding_mask``) neither vote nor train: a systematic
    error otherwise teaches every view the wrong boundary (on generated merchants with
    confusable noise the lexical view's AP rose from 0.63 to 0.85). Every case may still be a
    neighbour (a seeded reference sample above ``max_reference``). Rows not checked get the
    embedding view's probabilities in both views, so the combination leaves them as it is.

    Parameters
    ----------
    embeddings : ndarray of shape (n, dim), or row-indexable (see ``neighbour_label_votes``)
    texts_of : callable ``(rows) -> texts``
        The texts of the given row indices, in their order (only checked rows and a sample of
        context rows are asked for, so a caller can read them from a database).
    labels : ndarray of shape (n,), int
    n_classes : int
    embedding_proba : ndarray of shape (n, n_classes)
    embedding_mask : ndarray of shape (n,), bool
    seed : int
    k, max_reference : int
        See ``neighbour_label_votes``.
    max_rows : int
        See ``auxiliary_rows``.

    Returns
    -------
    votes, lexical : ndarrays of shape (n, n_classes)
    checked : ndarray of shape (n,), bool
    """
    labels = np.asarray(labels).astype(np.int64)
    n = labels.shape[0]
    trainable = ~np.asarray(embedding_mask, dtype=bool)
    rows = auxiliary_rows(embedding_proba, labels, max_rows=max_rows)
    checked = np.zeros(n, dtype=bool)
    checked[rows] = True
    votes = np.array(embedding_proba, dtype=np.float64)
    votes[rows] = neighbour_label_votes(
        embeddings,
        labels,
        n_classes=n_classes,
        k=k,
        max_reference=max_reference,
        random_state=seed,
        voters=trainable,
        queries=rows,
    )
    context = np.flatnonzero(~checked & trainable)
    if context.size > AUX_CONTEXT_ROWS:
        context = np.sort(
            np.random.default_rng(seed).choice(context, AUX_CONTEXT_ROWS, replace=False)
        )
    both = np.concatenate([rows, context])
    lexical = np.array(embedding_proba, dtype=np.float64)
    lexical[rows] = lexical_out_of_fold_proba(
        texts_of(both),
        labels[both],
        n_classes=n_classes,
        random_state=seed,
        train_mask=trainable[both],
    )[: rows.size]
    return votes, lexical, checked


def combine_views(
    labels: np.ndarray,
    probas: Sequence[np.ndarray],
    *,
    combine: str = "geometric",
    weights: np.ndarray | None = None,
    checked: np.ndarray | None = None,
) -> Detection:
    """The ``Detection`` of views given as probability matrices, in ``VIEWS`` order.

    The combined probabilities are the weighted geometric mean of the views' (``view_weights``:
    ``VIEW_WEIGHTS`` scaled by each view's skill on these labels; renormalised per row: a product of experts, Hinton 2002, so a class any strong view rules
    out stays unlikely), except with ``combine="mean"`` (weighted arithmetic mean). The prune
    set is confident learning (``filter_by="both"``) on them, the suggestion their top class.
    The score is ``contender_score`` of the combined probabilities, or with ``"rank"`` the
    weighted mean of each view's disagreement rank among the n cases scaled to [0, 1] (rank
    averaging: no view's scale dominates). Measured on bench/noise_detection.py, the geometric
    mean ranked best or level on every setting.

    Row-wise except for ranks and confident learning's per-class thresholds, both of which
    depend on the set of rows but not on their order: permuting the rows permutes the result.

    Parameters
    ----------
    labels : ndarray of shape (n,), int
    probas : sequence of len(VIEWS) ndarrays of shape (n, n_classes)
    combine : {"geometric", "rank", "mean"}
    weights : ndarray of shape (len(VIEWS),), optional
        The views' weights (default ``view_weights(labels, probas)``): pass a detection's own
        to score a subset of its rows, or other labels of them, on the same scale.
    checked : ndarray of shape (n,), bool, optional
        Rows the auxiliary views checked (``auxiliary_views``; default all): only these weigh
        the views, and only on these can an auxiliary view agree with the suggestion.

    Returns
    -------
    Detection
    """
    if combine not in COMBINES:
        raise NoiseError(UNKNOWN_COMBINE.format(value=combine, choices=COMBINES))
    if len(probas) != len(VIEWS):
        raise NoiseError(
            BAD_PARAMETER.format(name="probas", expected=f"{len(VIEWS)} views", value=len(probas))
        )
    matrices = [_check(labels, p)[1] for p in probas]
    labels = np.asarray(labels).astype(np.int64)
    n = labels.shape[0]
    rows = np.arange(n)
    seen = np.ones(n, dtype=bool) if checked is None else np.asarray(checked, dtype=bool)
    if weights is None:
        weights = view_weights(labels[seen], [p[seen] for p in matrices])
    weights = np.asarray(weights)
    if combine == "mean":
        mean = sum(w * p for w, p in zip(weights, matrices, strict=True))
    else:
        logs = sum(
            w * np.log(np.clip(p, _FLOOR, 1.0)) for w, p in zip(weights, matrices, strict=True)
        )
        mean = np.exp(logs - logs.max(axis=1, keepdims=True))
        mean /= mean.sum(axis=1, keepdims=True)
    disagreement = [1.0 - p[rows, labels] for p in matrices]
    if combine == "rank":
        # Average ranks (ties share one) keep the result independent of row order.
        ranks = sum(
            w * rankdata(d, method="average") for w, d in zip(weights, disagreement, strict=True)
        )
        score = (ranks - 1.0) / max(n - 1, 1)
    else:
        score = contender_score(mean, labels)
    flagged = find_label_issues(labels, mean, filter_by="both")
    suggested = mean.argmax(axis=1)
    agrees = np.stack([p.argmax(axis=1) == suggested for p in matrices], axis=1)
    agrees[~seen, 1:] = False
    emb, _, lex = matrices
    signals = np.column_stack(
        [
            emb[rows, labels],
            _margin(emb, labels),
            disagreement[1],
            lex[rows, labels],
            _margin(lex, labels),
            score,
        ]
    )
    return Detection(
        score=np.asarray(score, dtype=np.float64),
        flagged=np.asarray(flagged, dtype=bool),
        suggested=suggested.astype(np.int64),
        suggested_p=mean[rows, suggested],
        agrees=agrees,
        signals=signals,
        pred_probs=mean,
    )


def contender_score(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How strongly the best other class beats the given label: ``(q + s) / (q + p + 2s)``, p
    the given label's probability, q the best other class's, s ``CONTENDER_SMOOTHING``.

    In [0, 1], 0.5 when the two are level; monotone in the smoothed log-likelihood ratio of the
    suggested correction against the label (a likelihood-ratio test of the two). One minus the
    given label's probability (self-confidence) ranks a label doubted because the case is
    unclear as high as one a clear alternative contradicts; on label noise that people make
    (instance-dependent, confusable) the ratio ranks errors higher: average precision on
    bench/noise_detection.py 0.798 against 0.760 on Banking77, 0.630 against 0.614 on
    merchants, and level (within 0.008) on uniform noise.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
    labels : ndarray of shape (n,), int

    Returns
    -------
    ndarray of shape (n,), float64
    """
    labels = np.asarray(labels).astype(np.int64)
    given = proba[np.arange(labels.shape[0]), labels]
    best = best_other(proba, labels)[1] if proba.shape[1] > 1 else np.zeros_like(given)
    s = CONTENDER_SMOOTHING
    return np.asarray((best + s) / (best + given + 2 * s), dtype=np.float64)


def view_skill(labels: np.ndarray, proba: np.ndarray) -> float:
    """The share of the class prior's log loss on ``labels`` that ``proba`` removes: 1 for a
    view that is sure of every label, 0 for one no better than guessing by class frequency."""
    labels = np.asarray(labels).astype(np.int64)
    rows = np.arange(labels.shape[0])
    prior = np.bincount(labels, minlength=proba.shape[1]) / max(labels.shape[0], 1)
    prior_loss = -np.mean(np.log(np.clip(prior[labels], _FLOOR, 1.0)))
    view_loss = -np.mean(np.log(np.clip(proba[rows, labels], _FLOOR, 1.0)))
    return float(max(0.0, 1.0 - view_loss / prior_loss)) if prior_loss > 0 else 0.0


def view_weights(labels: np.ndarray, probas: Sequence[np.ndarray]) -> np.ndarray:
    """``VIEW_WEIGHTS``, each auxiliary view's scaled down by its skill relative to the embedding
    view's (``view_skill``, capped at 1), normalised to sum to 1.

    A view that has learnt nothing (a word model on texts that say nothing of the class, a few
    dozen labels) would otherwise add noise to every case: with its weight near 0 the
    combination falls back to the views that know something.
    """
    base = np.asarray(VIEW_WEIGHTS, dtype=np.float64)
    skills = np.array([view_skill(labels, p) for p in probas])
    scale = np.ones_like(base)
    if skills[0] > 0:
        scale[1:] = np.minimum(1.0, skills[1:] / skills[0])
    weights = base * scale
    return weights / weights.sum()


def _margin(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Probability of the given label minus the best other class's (Northcutt et al.'s
    normalized margin before its rescaling): negative when another class is preferred."""
    given = proba[np.arange(labels.shape[0]), labels]
    return np.asarray(given - best_other(proba, labels)[1])
