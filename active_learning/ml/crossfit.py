"""Cross-fitted comparison of two training sets on the analysts' labels (warm-up promotion).

While evaluation evidence is short, the analysts' pool labels are the only trustworthy labels
there are, but both models trained on some of them. So both recipes are refitted K times: for
each fold of the scored labels, each side is fitted on its own training set minus that fold's
cases (their given labels too) and predicts the fold. Every scored label is then predicted out of
fold by both, on the same folds: no model is ever scored on a label it trained on. Labels
neither side trains on (the evaluation split's) may be scored beside them (`extra_X`): each
fold's refit predicts them, and the K predictions are averaged. Pure: no Django imports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

N_FOLDS = 3


@dataclass(frozen=True)
class TrainingRows:
    """One side's training set: case ids, label ids and weights, aligned."""

    case_ids: np.ndarray
    labels: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class CrossFitted:
    """Out-of-fold probabilities of both sides for the scored cases (columns: the class list)."""

    case_ids: np.ndarray
    labels: np.ndarray
    folds: np.ndarray
    champion: np.ndarray
    challenger: np.ndarray
    # Both sides' probabilities for `extra_X` (the mean over the folds' refits); (0, n_classes)
    # without extra rows.
    champion_extra: np.ndarray | None = None
    challenger_extra: np.ndarray | None = None


def fold_of(n: int, *, n_folds: int = N_FOLDS, seed: int = 0) -> np.ndarray:
    """A seeded, balanced assignment of `n` cases to `n_folds` folds."""
    folds = np.arange(n) % max(1, n_folds)
    return np.random.default_rng(seed).permutation(folds)


def cross_fit(
    *,
    scored_ids: np.ndarray,
    scored_labels: np.ndarray,
    champion: TrainingRows,
    challenger: TrainingRows,
    features: Callable[[np.ndarray], np.ndarray],
    fit_predict: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    n_classes: int,
    n_folds: int = N_FOLDS,
    seed: int = 0,
    extra_X: np.ndarray | None = None,
) -> CrossFitted:
    """Both sides' out-of-fold probabilities for `scored_ids`.

    Parameters
    ----------
    scored_ids, scored_labels : ndarray of shape (m,)
        The labels both sides are judged on (the analysts' pool labels).
    champion, challenger : TrainingRows
        Each side's training set (ids may include scored cases: those are left out per fold).
    features : callable ids -> X of shape (len(ids), dim)
    fit_predict : callable (X_train, y_train, w_train, X_test) -> proba (len(X_test), n_classes)
        The recipe both sides are refitted with.
    n_classes : int
    extra_X : ndarray of shape (e, dim), optional
        Rows neither side trains on, scored too: each fold's refit predicts them, averaged.
    """
    scored_ids = np.asarray(scored_ids, dtype=np.int64)
    folds = fold_of(scored_ids.size, n_folds=n_folds, seed=seed)
    out = {
        side: np.zeros((scored_ids.size, n_classes), dtype=float)
        for side in ("champion", "challenger")
    }
    n_extra = 0 if extra_X is None else int(extra_X.shape[0])
    extra = {side: np.zeros((n_extra, n_classes), dtype=float) for side in out}
    fitted = 0
    for k in range(max(1, n_folds)):
        held = folds == k
        if not held.any():
            continue
        fitted += 1
        X_test = features(scored_ids[held])
        if n_extra:
            X_test = np.concatenate([X_test, np.asarray(extra_X, dtype=X_test.dtype)])
        for side, rows in (("champion", champion), ("challenger", challenger)):
            keep = ~np.isin(rows.case_ids, scored_ids[held])
            proba = fit_predict(
                features(rows.case_ids[keep]), rows.labels[keep], rows.weights[keep], X_test
            )
            out[side][held] = proba[: int(held.sum())]
            extra[side] += proba[int(held.sum()) :]
    if fitted:
        extra = {side: p / fitted for side, p in extra.items()}
    elif n_extra:  # nothing of the pool to hold out: one fit per side on all of its rows
        for side, rows in (("champion", champion), ("challenger", challenger)):
            extra[side] = fit_predict(
                features(rows.case_ids), rows.labels, rows.weights, np.asarray(extra_X)
            )
    return CrossFitted(
        case_ids=scored_ids,
        labels=np.asarray(scored_labels),
        folds=folds,
        champion=out["champion"],
        challenger=out["challenger"],
        champion_extra=extra["champion"],
        challenger_extra=extra["challenger"],
    )


def rows_capped(rows: TrainingRows, *, keep_ids: np.ndarray, cap: int, seed: int) -> TrainingRows:
    """At most `cap` rows: every row of `keep_ids` (the analysts' labels), then the rest with the
    lowest seeded hash of their case id, so refitting K times stays affordable at a million cases
    and two sides sharing most cases keep the same ones (a positional sample would not)."""
    if rows.case_ids.size <= cap:
        return rows
    must = np.isin(rows.case_ids, keep_ids)
    rest = np.flatnonzero(~must)
    room = max(0, cap - int(must.sum()))
    order = np.argsort(id_hash(rows.case_ids[rest], seed), kind="stable")
    picked = rest[order[:room]]
    index = np.sort(np.concatenate([np.flatnonzero(must), picked]))
    return TrainingRows(rows.case_ids[index], rows.labels[index], rows.weights[index])


def id_hash(case_ids: np.ndarray, seed: int) -> np.ndarray:
    """A seeded pseudo-random value in [0, 1) per case id (splitmix64), the same for an id
    whatever array it sits in."""
    x = (np.asarray(case_ids, dtype=np.uint64) + np.uint64(seed % 2**63)) * np.uint64(
        0x9E3779B97F4A7C15
    )
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return np.asarray(x >> np.uint64(11), dtype=np.float64) / float(2**53)
