"""Out-of-fold predicted probabilities (stratified K-fold), single and averaged over seeds.

``X`` is ``(n, dim)`` embeddings, ``labels`` ``(n,)`` class indices; results are ``(n, n_classes)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from active_learning.ml.neighbours import RowReader
from active_learning.ml.noise._common import (
    BAD_LABELS,
    EMPTY_INPUT,
    TOO_FEW_CLASSES,
    TOO_FEW_SPLITS,
    EstimatorLike,
    NoiseError,
    _new_estimator,
)

# Rows predicted per ``predict_proba`` call: a million-row fold predicts in slices, never from
# one copy of all its test rows (a fifth of a 1M x 384 float32 matrix is 300 MB).
PREDICT_ROWS = 65_536


def out_of_fold_proba(
    X: np.ndarray | RowReader,
    labels: np.ndarray,
    *,
    n_classes: int | None = None,
    estimator: EstimatorLike = None,
    n_splits: int = 5,
    train_mask: np.ndarray | None = None,
    random_state: int | None = 0,
    fit_max_rows: int | None = None,
) -> np.ndarray:
    """Out-of-fold predicted probabilities by stratified K-fold.

    Each row is predicted by a model that never saw it, except rows of *rare* classes (fewer
    members than ``n_splits``): they stay in every training fold (a class the model never saw
    cannot be predicted at all) and get the mean of the fold models' in-sample probabilities, so
    they are rarely flagged, which is the safe side for a class with almost no evidence.

    Parameters
    ----------
    X : ndarray of shape (n, dim), or any object whose ``X[rows]`` (rows an int array) gives
        those rows as an ndarray: only the training rows (or their sample) and slices of the
        test rows are read at a time, so ``X`` may read them from a file on demand.
    labels : ndarray of shape (n,), int class indices
    n_classes : int, optional
        Number of columns; default ``labels.max() + 1``.
    estimator : sklearn classifier (cloned per fold) or a zero-argument factory, optional
        Default ``LogisticRegression(C=10)``.
    n_splits : int
    train_mask : ndarray of shape (n,), bool, optional
        Rows allowed to train (e.g. not yet flagged); all rows are still predicted out of fold.
    random_state : int or None
        Seed of the fold shuffle.
    fit_max_rows : int, optional
        Each fold model fits on a seeded sample of at most this many of its training rows
        (``np.random.default_rng(m).choice(m, fit_max_rows, replace=False)`` of its ``m`` rows,
        in row order); only the sample is read from ``X``. Default: all of them.

    Returns
    -------
    ndarray of shape (n, n_classes), float64; rows sum to 1
    """
    labels = np.asarray(labels).astype(np.int64)
    n = labels.shape[0]
    if n == 0:
        raise NoiseError(EMPTY_INPUT)
    if n_splits < 2:
        raise NoiseError(TOO_FEW_SPLITS.format(value=n_splits))
    k = int(n_classes) if n_classes is not None else int(labels.max()) + 1
    if labels.min() < 0 or labels.max() >= k:
        raise NoiseError(BAD_LABELS.format(max_class=k - 1))
    if np.unique(labels).size < 2:
        raise NoiseError(TOO_FEW_CLASSES)
    can_train = np.ones(n, dtype=bool) if train_mask is None else np.asarray(train_mask, dtype=bool)
    counts = np.bincount(labels, minlength=k)
    rare = counts[labels] < n_splits
    common = np.flatnonzero(~rare)
    rare_rows = np.flatnonzero(rare)
    proba = np.zeros((n, k), dtype=np.float64)

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        train = train[can_train[train]]
        if fit_max_rows is not None and train.size > fit_max_rows:
            rng = np.random.default_rng(train.size)
            train = train[np.sort(rng.choice(train.size, fit_max_rows, replace=False))]
        model = _new_estimator(estimator).fit(X[train], labels[train])
        return predict_proba_in_slices(model, X, test, n_classes=k)

    if common.size == 0:  # every class is rare: in-sample is all there is
        proba[:] = fit_predict(np.arange(n), np.arange(n))
        return proba
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    for train_pos, test_pos in folds.split(np.zeros(common.size), labels[common]):
        train = np.concatenate([common[train_pos], rare_rows])
        test = np.concatenate([common[test_pos], rare_rows])
        out = fit_predict(train, test)
        proba[common[test_pos]] = out[: test_pos.size]
        proba[rare_rows] += out[test_pos.size :] / n_splits
    return proba


def predict_proba_in_slices(
    model: Any, X: np.ndarray | RowReader, rows: np.ndarray, *, n_classes: int
) -> np.ndarray:
    """A fitted ``model``'s probabilities of ``X[rows]``, ``PREDICT_ROWS`` rows a call.

    The slices are near-equal (``np.array_split``), so no call predicts a handful of rows; each
    row's probabilities are the same as from one call on all of them.

    Parameters
    ----------
    model : fitted classifier with ``classes_`` (class indices) and ``predict_proba``
    X : ndarray of shape (n, dim), or row-indexable (see ``out_of_fold_proba``)
    rows : ndarray of shape (q,), int
    n_classes : int

    Returns
    -------
    ndarray of shape (q, n_classes), float64; zero in the columns of classes the model lacks
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = np.zeros((rows.size, n_classes), dtype=np.float64)
    if rows.size == 0:
        return out
    columns = np.asarray(model.classes_, dtype=np.int64)
    start = 0
    for part in np.array_split(rows, max(1, -(-rows.size // PREDICT_ROWS))):
        stop = start + part.size
        out[start:stop, columns] = model.predict_proba(X[part])
        start = stop
    return out


def ensemble_out_of_fold_proba(
    X: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int | None = None,
    estimators: Sequence[EstimatorLike] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    n_splits: int = 5,
) -> np.ndarray:
    """Mean of out-of-fold probabilities over several fold seeds and estimators.

    Parameters
    ----------
    X : ndarray of shape (n, dim)
    labels : ndarray of shape (n,)
    n_classes : int, optional
    estimators : sequence of estimators or factories, optional (default: one LogisticRegression)
    seeds : sequence of int
    n_splits : int

    Returns
    -------
    ndarray of shape (n, n_classes)
    """
    members = list(estimators) if estimators else [None]
    total = None
    for est in members:
        for seed in seeds:
            p = out_of_fold_proba(
                X, labels, n_classes=n_classes, estimator=est, n_splits=n_splits, random_state=seed
            )
            total = p if total is None else total + p
    assert total is not None
    return total / (len(members) * len(seeds))
