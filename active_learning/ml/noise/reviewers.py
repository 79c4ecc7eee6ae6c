"""Learning from reviewers: re-rank open label issues by a model of reviewers' answers.

``signals`` is ``(n, n_signals)`` (``views.SIGNALS`` columns), ``labels`` ``(n,)`` the given class
indices, ``sources`` ``(n,)`` 1 where the label came from the import (given), 0 from an analyst;
``answers`` ``(m,)`` is 1 where a reviewer confirmed the label wrong, 0 where confirmed right.
``contenders`` ``(n,)`` is each row's most probable class other than its label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from active_learning.ml.noise._common import (
    BAD_PARAMETER,
    SHAPE_MISMATCH,
    NoiseError,
    best_other,
)

MIN_REVIEWS = 50
TOO_FEW_REVIEWS = "The reviewer model needs {needed} reviewed issues with both answers, got {n}."
# Strong shrinkage: a hundred answers against ~10 signals plus one column per class. Offline
# (Banking77 and merchants, cached draws, 100 reviews) 0.1 beat 0.2, 0.5 and 1 on each setting tried.
REVIEWER_C = 0.1
_CV_SPLITS = 5


@dataclass(frozen=True)
class Corrections:
    """The corrections a detection proposes: ``pairs[a, b]`` flagged cases labelled ``a`` whose
    contender is ``b``, ``sizes[a]`` cases labelled ``a``; both over the cases counted (the
    product counts the open ones)."""

    pairs: np.ndarray
    sizes: np.ndarray


def contenders(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each row's most probable class other than its label, shape (n,), int64."""
    return best_other(proba, labels)[0]


def corrections(
    labels: np.ndarray, contender: np.ndarray, flagged: np.ndarray, *, n_classes: int
) -> Corrections:
    """Count the flagged cases by (label, contender) pair, and the cases by label."""
    labels = np.asarray(labels, dtype=np.int64)
    flagged = np.asarray(flagged, dtype=bool)
    pair = labels[flagged] * n_classes + np.asarray(contender, dtype=np.int64)[flagged]
    pairs = np.bincount(pair, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    return Corrections(pairs=pairs, sizes=np.bincount(labels, minlength=n_classes))


def reviewer_features(
    signals: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    sources: np.ndarray | None = None,
    contender: np.ndarray | None = None,
    proposed: Corrections | None = None,
    counted: np.ndarray | None = None,
) -> np.ndarray:
    """The reviewer model's input: signals, the given class one-hot, the label's source and,
    with ``contender`` and ``proposed``, how common the row's correction is.

    People and legacy rules make the same mistake many times (one category filed as its
    neighbour), so a correction that many flagged cases share is more often a real error than
    one proposed once; only reviews tell how much more, per project.

    Parameters
    ----------
    signals : ndarray of shape (n, n_signals)
    labels : ndarray of shape (n,), int
    n_classes : int
    sources : ndarray of shape (n,), optional
        1 for an imported (given) label, 0 for an analyst's; default all given.
    contender : ndarray of shape (n,), int, optional
        Each row's most probable other class (``contenders``).
    proposed : Corrections, optional
        The detection's corrections over the open (undecided) cases (``corrections``).
    counted : ndarray of shape (n,), bool, optional
        Rows that are themselves among ``proposed``'s flagged cases: their own flag is left out,
        so every row sees how many *other* open cases share its correction, whether it is a
        reviewed row (never counted) or an open one. Default: none.

    Returns
    -------
    ndarray of shape (n, n_signals + n_classes + 1 [+ 3]), float64
        The last three columns (with ``contender``): the share of the label's class flagged, the
        share flagged toward this contender, and the log of that pair's count plus one.
    """
    signals = np.asarray(signals, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if signals.ndim != 2 or signals.shape[0] != labels.shape[0]:
        raise NoiseError(SHAPE_MISMATCH.format(n_labels=labels.shape[0], n_rows=signals.shape[0]))
    given = np.ones(labels.shape[0]) if sources is None else np.asarray(sources, np.float64)
    onehot = np.zeros((labels.shape[0], n_classes))
    onehot[np.arange(labels.shape[0]), labels] = 1.0
    if contender is None or proposed is None:
        return np.column_stack([signals, onehot, given])
    own = np.zeros(labels.shape[0]) if counted is None else np.asarray(counted, np.float64)
    size = np.maximum(proposed.sizes[labels], 1).astype(np.float64)
    pair = proposed.pairs[labels, np.asarray(contender, dtype=np.int64)] - own
    flagged = proposed.pairs.sum(axis=1)[labels] - own
    common = np.column_stack([flagged / size, pair / size, np.log1p(pair)])
    return np.column_stack([signals, onehot, given, common])


def fit_reviewer_model(
    features: np.ndarray, answers: np.ndarray, *, seed: int = 0
) -> tuple[Pipeline, float]:
    """Fit "really wrong" on reviewed issues; return the model and its cross-validated AP.

    A small stacked model over the detectors' signals (Wolpert, "Stacked Generalization",
    1992), trained on reviewers' answers instead of the noisy labels: it learns which views,
    classes and label sources this project's real errors show up in. Standardised inputs,
    L2-regularised logistic regression (``C=REVIEWER_C``); the AP is of out-of-fold
    probabilities over stratified, seeded folds, so it is comparable to the unsupervised
    ranking's AP on the same rows.

    Parameters
    ----------
    features : ndarray of shape (m, n_features)
        ``reviewer_features`` of the reviewed rows.
    answers : ndarray of shape (m,)
        1 = confirmed wrong, 0 = confirmed right.
    seed : int

    Returns
    -------
    model : sklearn Pipeline, fitted on all reviewed rows
    cv_ap : float
        Average precision of the cross-validated probabilities against ``answers``.
    """
    X = np.asarray(features, dtype=np.float64)
    y = np.asarray(answers).astype(np.int64)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise NoiseError(SHAPE_MISMATCH.format(n_labels=y.shape[0], n_rows=X.shape[0]))
    if not np.isin(y, (0, 1)).all():
        raise NoiseError(BAD_PARAMETER.format(name="answers", expected="0 or 1", value=y))
    minority = int(min((y == 0).sum(), (y == 1).sum()))
    if y.shape[0] < MIN_REVIEWS or minority < 2:
        raise NoiseError(TOO_FEW_REVIEWS.format(needed=MIN_REVIEWS, n=y.shape[0]))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=REVIEWER_C, max_iter=1000))
    folds = StratifiedKFold(n_splits=min(_CV_SPLITS, minority), shuffle=True, random_state=seed)
    held_out = cross_val_predict(model, X, y, cv=folds, method="predict_proba")[:, 1]
    cv_ap = float(average_precision_score(y, held_out))
    return model.fit(X, y), cv_ap


def rerank(model: Pipeline, features: np.ndarray) -> np.ndarray:
    """Probability that each open issue is really wrong, by a ``fit_reviewer_model`` model.

    Parameters
    ----------
    model : fitted Pipeline
    features : ndarray of shape (n, n_features)
        ``reviewer_features`` of the open rows.

    Returns
    -------
    ndarray of shape (n,), float64: higher is more likely wrong
    """
    return np.asarray(model.predict_proba(np.asarray(features, dtype=np.float64))[:, 1])
