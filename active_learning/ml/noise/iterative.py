"""Our improvement over one-shot confident learning: detect, retrain without the flagged, detect again.

``X`` ``(n, dim)``, ``labels`` ``(n,)``; returns a flag mask ``(n,)`` and probabilities ``(n, n_classes)``.
"""

from __future__ import annotations

import numpy as np

from active_learning.ml.neighbours import RowReader
from active_learning.ml.noise._common import BAD_PARAMETER, EstimatorLike, NoiseError
from active_learning.ml.noise.confident_learning import find_label_issues
from active_learning.ml.noise.out_of_fold import out_of_fold_proba


def find_label_issues_iterative(
    X: np.ndarray | RowReader,
    labels: np.ndarray,
    *,
    n_classes: int | None = None,
    estimator: EstimatorLike = None,
    n_splits: int = 5,
    rounds: int = 2,
    filter_by: str = "prune_by_noise_rate",
    pred_probs: np.ndarray | None = None,
    random_state: int = 0,
    fit_max_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Confident learning, then again on probabilities from models trained without the flagged rows.

    Our improvement over the one-shot default: systematic (confusable) noise teaches the model
    the wrong boundary, which hides the very errors it should expose. Each further round keeps
    the rows flagged so far out of the training folds (they are still predicted out of fold) and
    re-runs ``find_label_issues`` on the new probabilities against all given labels. Measured on
    Banking77 with 20% nearest-class noise: F1 0.74 (one shot) -> 0.83 (two rounds); see
    ``bench/noise_detection.py``. Related to the paper's own "clean, then retrain" loop and to
    Rank Pruning (Northcutt et al. 2017).

    Parameters
    ----------
    X : ndarray of shape (n, dim), or row-indexable (see ``out_of_fold_proba``)
    labels : ndarray of shape (n,)
    n_classes : int, optional
    estimator : sklearn classifier or zero-argument factory, optional
    n_splits : int
    rounds : int, >= 1 (1 is the plain one-shot detector)
    filter_by : see ``find_label_issues``
    pred_probs : ndarray of shape (n, n_classes), optional
        Out-of-fold probabilities of round 1, if already computed.
    random_state : int
        Fold seed of round 1; round r uses ``random_state + r - 1``.
    fit_max_rows : int, optional
        See ``out_of_fold_proba``.

    Returns
    -------
    mask : ndarray of shape (n,), bool
        Flagged by the last round.
    pred_probs : ndarray of shape (n, n_classes)
        The last round's out-of-fold probabilities (for ranking with ``rank_label_issues``).
    """
    if rounds < 1:
        raise NoiseError(BAD_PARAMETER.format(name="rounds", expected=">= 1", value=rounds))
    labels = np.asarray(labels).astype(np.int64)
    if pred_probs is None:
        pred_probs = out_of_fold_proba(
            X,
            labels,
            n_classes=n_classes,
            estimator=estimator,
            n_splits=n_splits,
            random_state=random_state,
            fit_max_rows=fit_max_rows,
        )
    mask = find_label_issues(labels, pred_probs, filter_by=filter_by)
    for r in range(1, rounds):
        pred_probs = out_of_fold_proba(
            X,
            labels,
            n_classes=pred_probs.shape[1],
            estimator=estimator,
            n_splits=n_splits,
            train_mask=~mask,
            random_state=random_state + r,
            fit_max_rows=fit_max_rows,
        )
        mask = find_label_issues(labels, pred_probs, filter_by=filter_by)
    return mask, pred_probs
