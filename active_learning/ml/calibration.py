"""Probability calibration (temperature, sigmoid, isotonic) and calibration measures.

Vocabulary: ``proba`` has shape (n_samples, n_classes), rows summing to one; ``y_true`` holds
labels (mapped to columns through ``classes``) or, without ``classes``, column indices. ECE and MCE
are top-label, over equal-width confidence bins (15 by default, Guo et al. 2017).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

__all__ = [
    "CALIBRATION_METHODS",
    "CalibratedClassifier",
    "CalibrationSummary",
    "ReliabilityBin",
    "brier_score",
    "calibration_summary",
    "expected_calibration_error",
    "maximum_calibration_error",
    "predict_scores",
    "reliability_bins",
]

CALIBRATION_METHODS = ("temperature", "sigmoid", "isotonic")
FEWER_FOLDS_REASON = "{cv} folds wanted, {n} used: the rarest class has {n} labels"
SINGLETONS_REASON = (
    "classes with one label kept in every training fold and out of calibration: {classes}; {how}"
)
ONE_MODEL = "one model on all labels, its temperature fitted on {n} folds' held-out logits"
FOLD_ENSEMBLE = "ensemble of {n} fold models"
UNCALIBRATED_REASON = "not calibrated: {why}"


class CalibratedClassifier(ClassifierMixin, BaseEstimator):
    """``CalibratedClassifierCV`` that degrades gracefully when labels are scarce.

    With ``cv`` folds wanted and the rarest class holding fewer labels, fewer folds are used
    (at least 2). Classes with a single label stay in every training fold and out of the
    calibration folds; temperature scaling then still fits one estimator on all labels, its
    temperature chosen on the folds' held-out logits (sigmoid and isotonic form an ensemble of
    the fold models instead). With fewer than ``min_samples`` calibration labels or fewer than
    two classes with two labels each, the estimator is fitted uncalibrated.
    ``fallback_reason_`` records what happened (None when not).
    An estimator with a ``tune(X, y, sample_weight)`` method (e.g. ``TunedLogisticRegression``)
    chooses its hyperparameters once on all labels, not inside every fold.

    Parameters
    ----------
    estimator : classifier
    method : {"temperature", "sigmoid", "isotonic"}, default="temperature"
    cv : int, default=5
    ensemble : bool, default=False
        False: one estimator fitted on all labels plus a calibrator fitted on out-of-fold
        predictions (temperature then keeps the estimator's argmax).
    min_samples : int, default=20
    random_state : int, RandomState or None
        Shuffles the folds.

    Attributes
    ----------
    beta_ : float or None
        The inverse temperature when this class fitted it itself (one-label classes present);
        None when ``estimator_`` is scikit-learn's calibrated classifier or uncalibrated.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        method: str = "temperature",
        cv: int = 5,
        ensemble: bool = False,
        min_samples: int = 20,
        random_state: Any = None,
    ) -> None:
        self.estimator = estimator
        self.method = method
        self.cv = cv
        self.ensemble = ensemble
        self.min_samples = min_samples
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> CalibratedClassifier:
        """Fit and calibrate on X (n_samples, n_features), y (n_samples,)."""
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"Unknown method {self.method!r}; expected {CALIBRATION_METHODS}.")
        X, y = np.asarray(X), np.asarray(y)
        self.beta_: float | None = None
        base = clone(self.estimator)
        if hasattr(base, "tune"):
            base = base.tune(X, y, sample_weight)
        labels, counts = np.unique(y, return_counts=True)
        single = np.isin(y, labels[counts < 2])
        n_splits = min(self.cv, int(counts[counts >= 2].min(initial=self.cv)))
        self.fallback_reason_: str | None = None
        why = None
        if len(labels) < 2 or np.sum(counts >= 2) < 2:
            why = "fewer than two classes with two labels each"
        elif (~single).sum() < self.min_samples:
            why = f"{int((~single).sum())} labels for calibration, {self.min_samples} needed"
        if why is not None:
            self.fallback_reason_ = UNCALIBRATED_REASON.format(why=why)
            self.method_, self.n_folds_ = "none", 0
            self.estimator_ = _fit(base, X, y, sample_weight)
            self.classes_ = self.estimator_.classes_
            return self
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=self.random_state)
        cv: Any = folds
        ensemble = self.ensemble
        if single.any():
            # CalibratedClassifierCV refuses a class with fewer labels than folds: explicit
            # splits keep one-label samples in every training part.
            rest, keep = np.flatnonzero(~single), np.flatnonzero(single)
            cv = [
                (np.concatenate([rest[tr], keep]), rest[te])
                for tr, te in folds.split(X[rest], y[rest])
            ]
            singles = labels[counts < 2].tolist()
            if self.method == "temperature" and not ensemble:
                # The test parts no longer cover all samples, so scikit-learn would average
                # the fold models: on 60-300 labels over 20 classes (a new project's first
                # models) that cost 0.03-0.10 test macro-F1 against one model on all labels.
                beta = _held_out_inverse_temperature(base, X, y, sample_weight, cv, labels)
                if beta is not None:
                    self.estimator_ = _fit(base, X, y, sample_weight)
                    self.beta_, self.classes_ = beta, self.estimator_.classes_
                    self.method_, self.n_folds_ = self.method, n_splits
                    self.fallback_reason_ = SINGLETONS_REASON.format(
                        classes=singles, how=ONE_MODEL.format(n=n_splits)
                    )
                    return self
            ensemble = True
            self.fallback_reason_ = SINGLETONS_REASON.format(
                classes=singles, how=FOLD_ENSEMBLE.format(n=n_splits)
            )
        elif n_splits < self.cv:
            self.fallback_reason_ = FEWER_FOLDS_REASON.format(cv=self.cv, n=n_splits)
        model = CalibratedClassifierCV(base, method=self.method, cv=cv, ensemble=ensemble)
        try:
            self.estimator_ = model.fit(X, y, sample_weight=sample_weight)
        except (RuntimeError, ValueError) as exc:
            # scikit-learn's temperature search can hit NaN on tiny, nearly separable folds
            # (seen with ~300 labels over 20 classes), and a fold whose labels all weigh zero
            # cannot be fitted: keep the model, uncalibrated, and say so.
            self.fallback_reason_ = UNCALIBRATED_REASON.format(why=f"calibration failed: {exc}")
            self.method_, self.n_folds_ = "none", 0
            self.estimator_ = _fit(base, X, y, sample_weight)
            self.classes_ = self.estimator_.classes_
            return self
        # Prediction does not need the splits: storing the fold count keeps model files small
        # and free of splitter types that the persistence allow-list would have to trust.
        self.estimator_.cv = n_splits
        self.method_, self.n_folds_ = self.method, n_splits
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, shape (n_samples, n_classes), in ``classes_`` order."""
        check_is_fitted(self)
        beta = getattr(self, "beta_", None)  # model files from before beta_ have none
        if beta is not None:
            return np.asarray(softmax(beta * _logits(self.estimator_, X), axis=1))
        if hasattr(self.estimator_, "predict_proba"):
            return np.asarray(self.estimator_.predict_proba(X))
        return predict_scores(self.estimator_, X)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class, shape (n_samples,)."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


def predict_scores(estimator: Any, X: Any) -> np.ndarray:
    """Class probabilities of a fitted estimator, or a softmax of its decision function.

    Returns
    -------
    ndarray of shape (n_samples, n_estimator_classes)
    """
    if hasattr(estimator, "predict_proba"):
        return np.asarray(estimator.predict_proba(X))
    return np.asarray(softmax(_logits(estimator, X), axis=1))


def _logits(estimator: Any, X: Any) -> np.ndarray:
    """(n_samples, n_classes) logits: the decision function, else log-probabilities."""
    if not hasattr(estimator, "decision_function"):
        return np.log(np.clip(np.asarray(estimator.predict_proba(X)), 1e-12, None))
    scores = np.asarray(estimator.decision_function(X), dtype=float)
    if scores.ndim == 1:  # binary: margin of the second class
        return np.column_stack([-scores, scores]) / 2.0
    return scores


def _held_out_inverse_temperature(
    base: Any,
    X: np.ndarray,
    y: np.ndarray,
    sample_weight: Any,
    splits: list[tuple[np.ndarray, np.ndarray]],
    labels: np.ndarray,
) -> float | None:
    """The inverse temperature minimising the (weighted) log loss of the held-out logits of
    `splits` ((train, test) index pairs), each fold's model fitted on its training part. None
    when a training part misses a class (its logits would not line up), the held-out labels
    weigh nothing or the search fails: the fold ensemble's path then says what went wrong."""
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    test_rows = np.concatenate([test for _, test in splits])
    logits = np.zeros((test_rows.size, labels.size))
    at = 0
    for train, test in splits:
        model = _fit(clone(base), X[train], y[train], None if w is None else w[train])
        if not np.array_equal(model.classes_, labels):
            return None
        logits[at : at + test.size] = _logits(model, X[test])
        at += test.size
    columns = np.searchsorted(labels, y[test_rows])
    weights = np.ones(test_rows.size) if w is None else w[test_rows]
    if not np.sum(weights) > 0:
        return None
    rows = np.arange(test_rows.size)

    def log_loss(log_beta: float) -> float:
        log_proba = log_softmax(np.exp(log_beta) * logits, axis=1)
        return float(-np.sum(weights * log_proba[rows, columns]) / np.sum(weights))

    # As scikit-learn's temperature scaling: the log of beta searched on [-10, 10].
    found = minimize_scalar(log_loss, bounds=(-10.0, 10.0))
    if not (found.success and np.isfinite(found.fun)):
        return None
    return float(np.exp(found.x))


def _fit(estimator: Any, X: Any, y: Any, sample_weight: Any) -> Any:
    if sample_weight is not None and has_fit_parameter(estimator, "sample_weight"):
        return estimator.fit(X, y, sample_weight=sample_weight)
    return estimator.fit(X, y)


def _label_indices(y_true: Any, proba: np.ndarray, classes: Sequence[Any] | None) -> np.ndarray:
    y_true = np.asarray(y_true)
    if classes is None:
        return y_true.astype(int)
    index = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
    return np.array([index[c] for c in y_true.tolist()], dtype=int)


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of a reliability diagram (``count`` 0: accuracy/confidence are 0)."""

    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reliability_bins(
    y_true: Any, proba: Any, *, classes: Sequence[Any] | None = None, n_bins: int = 15
) -> list[ReliabilityBin]:
    """Top-label reliability-diagram data over ``n_bins`` equal-width bins of [0, 1].

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    proba : array-like of shape (n_samples, n_classes)
    classes : sequence of length n_classes, optional
        Column labels; without it ``y_true`` holds column indices.
    n_bins : int, default=15

    Returns
    -------
    list of ReliabilityBin, length n_bins
    """
    proba = np.asarray(proba, dtype=float)
    truth = _label_indices(y_true, proba, classes)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == truth).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin b holds confidences in (edges[b], edges[b+1]]; a confidence of 0 falls in bin 0.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = which == b
        n = int(mask.sum())
        bins.append(
            ReliabilityBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                count=n,
                mean_confidence=float(confidence[mask].mean()) if n else 0.0,
                accuracy=float(correct[mask].mean()) if n else 0.0,
            )
        )
    return bins


def expected_calibration_error(
    y_true: Any,
    proba: Any,
    *,
    classes: Sequence[Any] | None = None,
    n_bins: int = 15,
    sample_weight: Any = None,
) -> float:
    """Top-label ECE: sum over bins of (bin share) * |accuracy - mean confidence|.

    Shapes as in :func:`reliability_bins`; ``sample_weight`` (n_samples,) weighs each case (an
    evaluation sample's inverse inclusion probabilities), shares and means included. Returns a
    float in [0, 1].
    """
    if sample_weight is None:
        bins = reliability_bins(y_true, proba, classes=classes, n_bins=n_bins)
        total = sum(b.count for b in bins)
        return float(sum(b.count * abs(b.accuracy - b.mean_confidence) for b in bins) / total)
    proba = np.asarray(proba, dtype=float)
    w = np.asarray(sample_weight, dtype=float)
    truth = _label_indices(y_true, proba, classes)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == truth).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    # Per bin, |sum w (correct - confidence)| is its weight times |accuracy - mean confidence|.
    gaps = np.bincount(which, weights=w * (correct - confidence), minlength=n_bins)
    return float(np.abs(gaps).sum() / w.sum())


def maximum_calibration_error(
    y_true: Any, proba: Any, *, classes: Sequence[Any] | None = None, n_bins: int = 15
) -> float:
    """Top-label MCE: the largest |accuracy - mean confidence| over non-empty bins."""
    bins = reliability_bins(y_true, proba, classes=classes, n_bins=n_bins)
    return float(max(abs(b.accuracy - b.mean_confidence) for b in bins if b.count))


def brier_score(
    y_true: Any, proba: Any, *, classes: Sequence[Any] | None = None, sample_weight: Any = None
) -> float:
    """Multiclass Brier score: mean over samples of sum_k (p_k - 1[y = k])^2, in [0, 2].

    Shapes as in :func:`reliability_bins`; ``sample_weight`` makes the mean a weighted one.
    """
    proba = np.asarray(proba, dtype=float)
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(proba)), _label_indices(y_true, proba, classes)] = 1.0
    return float(np.average(np.sum((proba - onehot) ** 2, axis=1), weights=sample_weight))


@dataclass(frozen=True)
class CalibrationSummary:
    """ECE, MCE, Brier score and reliability bins of one set of predictions."""

    ece: float
    mce: float
    brier: float
    n_samples: int
    bins: list[ReliabilityBin]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration_summary(
    y_true: Any, proba: Any, *, classes: Sequence[Any] | None = None, n_bins: int = 15
) -> CalibrationSummary:
    """All calibration measures at once (shapes as in :func:`reliability_bins`)."""
    kwargs: dict[str, Any] = {"classes": classes, "n_bins": n_bins}
    return CalibrationSummary(
        ece=expected_calibration_error(y_true, proba, **kwargs),
        mce=maximum_calibration_error(y_true, proba, **kwargs),
        brier=brier_score(y_true, proba, classes=classes),
        n_samples=len(np.asarray(y_true)),
        bins=reliability_bins(y_true, proba, **kwargs),
    )
