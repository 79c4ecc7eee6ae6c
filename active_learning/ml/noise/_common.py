"""Shared pieces of label-error detection: errors, message constants, input checks.

``labels`` are class indices ``(n,)``, ``pred_probs`` out-of-fold probabilities ``(n, n_classes)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning")
RANKINGS = ("self_confidence", "normalized_margin")

BAD_LABELS = "labels must be a 1-D array of class indices in 0..{max_class}."
SHAPE_MISMATCH = "labels has {n_labels} rows but pred_probs has {n_rows}."
BAD_PRED_PROBS = "pred_probs must be a 2-D array of shape (n_samples, n_classes >= 2)."
UNKNOWN_FILTER = "Unknown filter_by {value!r}; expected one of {choices}."
UNKNOWN_RANKING = "Unknown ranking method {value!r}; expected one of {choices}."
TOO_FEW_SPLITS = "n_splits must be at least 2, got {value}."
TOO_FEW_CLASSES = "Out-of-fold probabilities need at least two classes in labels."
EMPTY_INPUT = "There are no labelled rows to check."
BAD_PARAMETER = "{name} must be {expected}, got {value!r}."

# Same numerical constants as the paper's reference implementation, so results match exactly.
_FLOAT_EQ = 1e-6
_THRESHOLD_FLOOR = 2e-6
_TINY = 1e-100
_MISSING_CLASS_THRESHOLD = 2.0


class NoiseError(ValueError):
    """Label-error detection cannot run on the given input."""


EstimatorLike = Any  # an unfitted sklearn classifier, or a zero-argument factory returning one


def _check(labels: np.ndarray, pred_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred_probs = np.asarray(pred_probs, dtype=np.float64)
    if pred_probs.ndim != 2 or pred_probs.shape[1] < 2:
        raise NoiseError(BAD_PRED_PROBS)
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise NoiseError(BAD_LABELS.format(max_class=pred_probs.shape[1] - 1))
    if labels.shape[0] != pred_probs.shape[0]:
        raise NoiseError(
            SHAPE_MISMATCH.format(n_labels=labels.shape[0], n_rows=pred_probs.shape[0])
        )
    if labels.shape[0] == 0:
        raise NoiseError(EMPTY_INPUT)
    if labels.min() < 0 or labels.max() >= pred_probs.shape[1]:
        raise NoiseError(BAD_LABELS.format(max_class=pred_probs.shape[1] - 1))
    return labels.astype(np.int64), pred_probs


def _new_estimator(estimator: EstimatorLike) -> Any:
    if estimator is None:
        return LogisticRegression(C=10.0, max_iter=1000)
    if hasattr(estimator, "fit"):
        return clone(estimator)
    if callable(estimator):
        return estimator()
    raise NoiseError(
        BAD_PARAMETER.format(name="estimator", expected="an estimator or factory", value=estimator)
    )


def best_other(proba: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's most probable class other than its label, and that class's probability.

    Both of shape (n,): int64 classes, float64 probabilities (-inf with a single class).
    """
    labels = np.asarray(labels).astype(np.int64)
    others = np.array(proba, dtype=np.float64)
    others[np.arange(labels.shape[0]), labels] = -np.inf
    best = others.argmax(axis=1).astype(np.int64)
    return best, others[np.arange(labels.shape[0]), best]
