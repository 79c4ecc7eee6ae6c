"""Out-of-fold predicted probabilities (stratified K-fold), single and averaged over seeds.

``X`` is ``(n, dim)`` embeddings, ``labels`` ``(n,)`` class indices; results are ``(n, n_classes)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedKFold

from active_learning.ml.noise._common import (
    BAD_LABELS,
    EMPTY_INPUT,
    TOO_FEW_CLASSES,
    TOO_FEW_SPLITS,
    EstimatorLike,
    NoiseError,
    _new_estimator,
)


def out_of_fold_proba(
    X: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int | None = None,
    estimator: EstimatorLike = None,
    n_splits: int = 5,
    train_mask: np.ndarray | None = None,
    random_state: int | None = 0,
) -> np.ndarray:
    """Out-of-fold predicted probabilities by stratified K-fold.

    Each row is predicted by a model that never saw it, except rows of *rare* classes (fewer
    members than ``n_splits``): they stay in every training fold (a class the model never saw
    cannot be predicted at all) and get the mean of the fold models' in-sample probabilities, so
    they are rarely flagged, which is the safe side for a class with almost no evidence.

    Parameters
    ----------
    X : ndarray of shape (n, dim)
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
        model = _new_estimator(estimator).fit(X[train], labels[train])
        out = np.zeros((test.size, k), dtype=np.float64)
        out[:, np.asarray(model.classes_, dtype=np.int64)] = model.predict_proba(X[test])
        return out

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
