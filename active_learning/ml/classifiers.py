"""Classifiers on embeddings: one factory, a C-tuned logistic regression and a class-aligned wrapper.

Vocabulary: X has shape (n_samples, n_features); y holds class labels (str or int); ``classes`` is
the project's full, ordered class list, and every ``predict_proba`` here returns columns in that
order, shape (n_samples, n_classes), with zero for classes that had no training label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.svm import LinearSVC
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import check_is_fitted, has_fit_parameter, validate_data

from active_learning.ml.calibration import (
    CALIBRATION_METHODS,
    CalibratedClassifier,
    predict_scores,
)

__all__ = [
    "CLASSIFIER_KINDS",
    "DEFAULT_CS",
    "AlignedClassifier",
    "TunedLogisticRegression",
    "class_balance_weights",
    "make_classifier",
    "predict_scores",
]

CLASSIFIER_KINDS = ("logreg", "linear_svm", "mlp")
# On L2-normalized MiniLM embeddings C=1 underfits (Banking77: 0.908 test accuracy, C=10: 0.929).
DEFAULT_CS = (1.0, 3.0, 10.0, 30.0, 100.0)
DEFAULT_C = 10.0
# Below this many training rows (analysts' and given labels alike) C is DEFAULT_C, not tuned.
# Three folds of a few hundred labels over 20 classes pick C anywhere from 3 to 100 from one
# retrain to the next: on the loop benchmark's data (80 to 800 labels, 42 more each time, three
# orders) consecutive models' test macro-F1 then fell by up to 0.026-0.044, at C=10 by at most
# 0.011, and the tuned C ended no better.
TUNE_MIN_SAMPLES = 1000
# class_weight="auto": each class's weight is (total / (n_classes * class total)) ** power, totals
# of sample weights, the power 1 ("balanced") below TUNE_MIN_SAMPLES rows and 1/2 from there. On
# the loop benchmark's merchants (20 classes, the rarest under 2%; test macro-F1, three seeds):
# no weights scored 0.27 / 0.42 / 0.57 / 0.73 at 30 / 100 / 250 / 700 labels, balanced 0.39 /
# 0.53 / 0.66 / 0.77 (the square root 0.34 / 0.48 / 0.63 / 0.76): L2 had shrunk the classes holding
# one or two labels to nothing. From 1,500 labels fully balanced lost accuracy and, on noisy given
# labels, macro-F1 too (0.789 against 0.821), while the square root gained 0.001 to 0.024 on true
# and given labels alike (two seeds), its calibration on true labels no worse.
AUTO_BALANCE_POWERS = (1.0, 0.5)
UNKNOWN_LABELS_MESSAGE = "Labels not in the class list: {labels}."
UNKNOWN_KIND_MESSAGE = "Unknown classifier kind {kind!r}; expected one of {kinds}."


class TunedLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression whose C is chosen by cheap stratified cross-validation.

    The grid is scored by (weighted) held-out accuracy on the samples of classes with at least
    ``cv`` labels; CV is skipped, and ``default_C`` used, when fewer than ``min_samples`` such
    samples or fewer than two such classes exist.

    Parameters
    ----------
    Cs : sequence of float, default=DEFAULT_CS
    cv : int, default=3
    default_C : float, default=10.0
    min_samples : int, default=TUNE_MIN_SAMPLES
    max_iter : int, default=1000
    random_state : int, RandomState or None
        Shuffles the CV folds.
    """

    def __init__(
        self,
        Cs: Sequence[float] = DEFAULT_CS,
        *,
        cv: int = 3,
        default_C: float = DEFAULT_C,
        min_samples: int = TUNE_MIN_SAMPLES,
        max_iter: int = 1000,
        random_state: Any = None,
    ) -> None:
        self.Cs = Cs
        self.cv = cv
        self.default_C = default_C
        self.min_samples = min_samples
        self.max_iter = max_iter
        self.random_state = random_state

    def _logreg(self, C: float) -> LogisticRegression:
        return LogisticRegression(C=C, max_iter=self.max_iter)

    def tune(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Choose C and return an unfitted ``LogisticRegression`` with it.

        Sets ``C_``, ``cv_scores_`` ({C: mean held-out accuracy}) and ``cv_skipped_reason_``.
        """
        X, y = np.asarray(X), np.asarray(y)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        labels, counts = np.unique(y, return_counts=True)
        eligible = np.isin(y, labels[counts >= self.cv])
        self.cv_scores_: dict[float, float] = {}
        self.cv_skipped_reason_: str | None = None
        n_eligible_classes = int(np.sum(counts >= self.cv))
        if len(self.Cs) < 2:
            self.cv_skipped_reason_ = "a single C was given"
        elif eligible.sum() < self.min_samples or n_eligible_classes < 2:
            self.cv_skipped_reason_ = (
                f"too few labels for {self.cv}-fold CV: {int(eligible.sum())} labels in "
                f"{n_eligible_classes} classes with at least {self.cv} labels each"
            )
        if self.cv_skipped_reason_ is not None:
            self.C_ = float(self.Cs[0]) if len(self.Cs) == 1 else float(self.default_C)
            return self._logreg(self.C_)
        Xe, ye, we = X[eligible], y[eligible], w[eligible]
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        totals = dict.fromkeys(map(float, self.Cs), 0.0)
        for train, test in folds.split(Xe, ye):
            for C in totals:
                model = self._logreg(C).fit(Xe[train], ye[train], sample_weight=we[train])
                hits = model.predict(Xe[test]) == ye[test]
                totals[C] += float(np.sum(we[test] * hits) / np.sum(we[test]))
        self.cv_scores_ = {C: total / self.cv for C, total in totals.items()}
        # Ties go to the smaller C (stronger regularization).
        self.C_ = max(self.cv_scores_, key=lambda C: (round(self.cv_scores_[C], 12), -C))
        return self._logreg(self.C_)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TunedLogisticRegression:
        """Choose C, then fit on all of X, y (shapes (n_samples, n_features), (n_samples,))."""
        X, y = validate_data(self, X, y)
        self.estimator_ = self.tune(X, y, sample_weight).fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.estimator_.classes_
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits, shape (n_samples, n_classes) (or (n_samples,) for two classes)."""
        check_is_fitted(self)
        return np.asarray(self.estimator_.decision_function(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self)
        return np.asarray(self.estimator_.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(self.estimator_.predict(X))


def class_balance_weights(
    y: np.ndarray, sample_weight: np.ndarray | None = None, *, power: float = 1.0
) -> np.ndarray:
    """Per-row class weights (n_samples,): ``(total / (n_classes * class_total)) ** power``.

    Totals are sums of ``sample_weight`` (counts when None), over the classes of ``y`` that weigh
    something; power 1 with no sample weights is scikit-learn's ``"balanced"``.
    """
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    labels, inverse = np.unique(y, return_inverse=True)
    mass = np.bincount(inverse, weights=w, minlength=len(labels))
    # A class whose rows all weigh nothing is not counted and keeps weight 1 (its rows add
    # nothing anyway).
    weighed = mass > 0
    safe = np.where(weighed, mass, 1.0)
    per_class = np.where(weighed, (mass.sum() / (weighed.sum() * safe)) ** power, 1.0)
    return np.asarray(per_class[inverse], dtype=float)


class AlignedClassifier(ClassifierMixin, BaseEstimator):
    """Wraps a classifier so its probabilities always cover a fixed class list.

    Classes without labels get probability zero; a single labelled class gets probability one.
    Class imbalance is handled here, for any estimator, by multiplying sample weights with
    ``compute_sample_weight(class_weight, y)``, or for ``"auto"`` with
    :func:`class_balance_weights` at a power set by the training set's size.

    Parameters
    ----------
    estimator : classifier
        Needs ``predict_proba`` or ``decision_function``.
    classes : sequence, length n_classes
        The full class list; ``classes_`` keeps its order.
    class_weight : "auto", "balanced", dict or None, default=None
        ``"auto"``: balanced below ``TUNE_MIN_SAMPLES`` rows, the square root of balanced from
        there (see ``AUTO_BALANCE_POWERS``).
    """

    def __init__(self, estimator: Any, *, classes: Sequence[Any], class_weight: Any = None) -> None:
        self.estimator = estimator
        self.classes = classes
        self.class_weight = class_weight

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> AlignedClassifier:
        """Fit on X (n_samples, n_features) and labels y (n_samples,), optionally weighted."""
        X, y = validate_data(self, X, y, ensure_min_samples=1)
        self.classes_ = np.asarray(self.classes)
        unknown = sorted(set(np.unique(y).tolist()) - set(self.classes_.tolist()))
        if unknown:
            raise ValueError(UNKNOWN_LABELS_MESSAGE.format(labels=unknown))
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if self.class_weight is not None:
            if self.class_weight == "auto":
                small, large = AUTO_BALANCE_POWERS
                power = small if len(y) < TUNE_MIN_SAMPLES else large
                balance = class_balance_weights(y, weights, power=power)
            else:
                balance = compute_sample_weight(self.class_weight, y)
            weights = balance if weights is None else weights * balance
        seen = np.unique(y)
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        if len(seen) == 1:
            self.estimator_ = None
            self.columns_ = np.array([index[seen[0].item()]])
            return self
        # The inner estimator sees column positions 0..k-1, never the caller's label values:
        # scikit-learn's temperature scaling misreads labels that are not 0..k-1 (database ids
        # 1..20 gave a temperature of 2e4 and flat probabilities), and positions are all
        # predict_proba needs.
        positions = np.array([index[c] for c in y.tolist()], dtype=np.int64)
        estimator = clone(self.estimator)
        if weights is not None and has_fit_parameter(estimator, "sample_weight"):
            estimator.fit(X, positions, sample_weight=weights)
        else:
            estimator.fit(X, positions)
        self.estimator_ = estimator
        self.columns_ = np.asarray(estimator.classes_, dtype=np.int64)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities, shape (n_samples, n_classes), columns in ``classes`` order."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        proba = np.zeros((X.shape[0], len(self.classes_)))
        if self.estimator_ is None:
            proba[:, self.columns_[0]] = 1.0
        else:
            proba[:, self.columns_] = predict_scores(self.estimator_, X)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class, shape (n_samples,)."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


def make_classifier(
    kind: str = "logreg",
    *,
    classes: Sequence[Any],
    calibration: str | None = "temperature",
    C: float | None = None,
    class_weight: Any = None,
    calibration_cv: int = 5,
    hidden_layer_sizes: tuple[int, ...] = (256,),
    random_state: Any = None,
) -> AlignedClassifier:
    """Build an unfitted classifier whose ``predict_proba`` columns follow ``classes``.

    Parameters
    ----------
    kind : {"logreg", "linear_svm", "mlp"}
        ``logreg`` (default): multinomial logistic regression, C chosen by CV unless given
        (from TUNE_MIN_SAMPLES rows; below, DEFAULT_C).
        ``linear_svm``: ``LinearSVC`` (probabilities from calibration, else a softmax of margins).
        ``mlp``: one hidden ReLU layer, Adam, L2 ``alpha=1e-3``.
    classes : sequence, length n_classes
        The project's full class list.
    calibration : {"temperature", "sigmoid", "isotonic"} or None, default="temperature"
        See :class:`~active_learning.ml.calibration.CalibratedClassifier`.
    C : float, optional
        Fixed inverse regularization (logreg, linear_svm); default: CV (logreg) or 1.0 (SVM).
    class_weight : "auto", "balanced", dict or None, default=None
        Reweights classes; note that it shifts probabilities toward rare classes. ``"auto"``
        (the product's): see :class:`AlignedClassifier`.
    calibration_cv : int, default=5
    hidden_layer_sizes : tuple of int, default=(256,)
    random_state : int, RandomState or None

    Returns
    -------
    AlignedClassifier
    """
    base: Any
    if kind == "logreg":
        base = (
            TunedLogisticRegression(random_state=random_state)
            if C is None
            else LogisticRegression(C=C, max_iter=1000)
        )
    elif kind == "linear_svm":
        base = LinearSVC(C=1.0 if C is None else C, random_state=random_state)
    elif kind == "mlp":
        base = MLPClassifier(
            hidden_layer_sizes=hidden_layer_sizes,
            alpha=1e-3,
            max_iter=100,
            random_state=random_state,
        )
    else:
        raise ValueError(UNKNOWN_KIND_MESSAGE.format(kind=kind, kinds=CLASSIFIER_KINDS))
    if calibration not in (None, "none"):
        if calibration not in CALIBRATION_METHODS:
            raise ValueError(
                f"Unknown calibration {calibration!r}; expected {CALIBRATION_METHODS}."
            )
        base = CalibratedClassifier(
            base, method=calibration, cv=calibration_cv, random_state=random_state
        )
    return AlignedClassifier(base, classes=classes, class_weight=class_weight)
