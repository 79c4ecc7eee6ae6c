"""Evaluation metrics: accuracy, macro-F1, per-class and per-tier precision/recall, operating points.

Vocabulary: ``proba`` (n_samples, n_classes) with columns in ``classes`` order; ``tiers`` maps each
class to ``supportable``, ``restricted`` or ``prohibited``; a case's tier score is the sum of its
probabilities over that tier's classes. Operating points live in ``operating_points``;
results are dataclasses with ``to_dict()`` for JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from active_learning.ml.calibration import brier_score, expected_calibration_error
from active_learning.ml.operating_points import (
    OperatingPoint,
    operating_point,
    positives_needed,
    wilson_lower,
)

__all__ = [
    "TIERS",
    "ClassMetrics",
    "EvaluationReport",
    "OperatingPoint",
    "evaluate",
    "operating_point",
    "positives_needed",
    "tier_scores",
    "wilson_lower",
]

TIERS = ("supportable", "restricted", "prohibited")


def _to_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall and F1 of one class or tier (support = true members)."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int

    to_dict = _to_dict


@dataclass(frozen=True)
class EvaluationReport:
    """All evaluation figures of one model on one labelled set."""

    n_samples: int
    accuracy: float
    macro_f1: float
    ece: float
    brier: float
    per_class: list[ClassMetrics]
    per_tier: list[ClassMetrics] = field(default_factory=list)
    class_operating_points: list[OperatingPoint] = field(default_factory=list)
    tier_operating_points: list[OperatingPoint] = field(default_factory=list)

    to_dict = _to_dict


def tier_scores(proba: Any, classes: Sequence[Any], tiers: Mapping[Any, str]) -> np.ndarray:
    """Sum of class probabilities per tier.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
    classes : sequence of length n_classes
    tiers : mapping class -> one of TIERS

    Returns
    -------
    ndarray of shape (n_samples, 3), columns in TIERS order
    """
    proba = np.asarray(proba, dtype=float)
    membership = np.array([[tiers[c] == t for t in TIERS] for c in classes], dtype=float)
    return np.asarray(proba @ membership)


def _per_label(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[Any]) -> list[ClassMetrics]:
    p, r, f, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(labels), zero_division=0
    )
    return [
        ClassMetrics(str(c), float(p[i]), float(r[i]), float(f[i]), int(support[i]))
        for i, c in enumerate(labels)
    ]


def evaluate(
    y_true: Any,
    proba: Any,
    *,
    classes: Sequence[Any],
    tiers: Mapping[Any, str] | None = None,
    target_precision: float | None = None,
    confidence: float = 0.95,
    min_positives: int = 10,
    n_bootstrap: int = 1000,
    random_state: Any = None,
) -> EvaluationReport:
    """Evaluate probabilities against true labels.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, each in ``classes``.
    proba : array-like of shape (n_samples, n_classes)
    classes : sequence of length n_classes
    tiers : mapping class -> tier, optional
        Adds per-tier metrics (predicted tier = highest tier score).
    target_precision : float, optional
        Adds per-class (and per-tier) operating points.
    confidence, min_positives, n_bootstrap, random_state
        As in :func:`operating_point`.

    Returns
    -------
    EvaluationReport
    """
    y = np.asarray(y_true)
    proba = np.asarray(proba, dtype=float)
    labels = np.asarray(classes)
    y_pred = labels[np.argmax(proba, axis=1)]
    present = [c for c in classes if np.any(y == c)]  # macro-F1 over classes with labels
    rng = np.random.default_rng(random_state)
    kwargs: dict[str, Any] = {
        "confidence": confidence,
        "min_positives": min_positives,
        "n_bootstrap": n_bootstrap,
    }
    report: dict[str, Any] = {
        "n_samples": len(y),
        "accuracy": float(accuracy_score(y, y_pred)),
        "macro_f1": float(f1_score(y, y_pred, labels=present, average="macro", zero_division=0)),
        "ece": expected_calibration_error(y, proba, classes=classes),
        "brier": brier_score(y, proba, classes=classes),
        "per_class": _per_label(y, y_pred, classes),
    }
    if target_precision is not None:
        report["class_operating_points"] = [
            operating_point(y == c, proba[:, j], target_precision=target_precision,
                            name=str(c), random_state=rng, **kwargs)
            for j, c in enumerate(classes)
        ]  # fmt: skip
    if tiers is not None:
        scores = tier_scores(proba, classes, tiers)
        true_tier = np.array([tiers[c] for c in y.tolist()], dtype=object)
        pred_tier = np.array(TIERS, dtype=object)[np.argmax(scores, axis=1)]
        report["per_tier"] = _per_label(true_tier, pred_tier, TIERS)
        if target_precision is not None:
            report["tier_operating_points"] = [
                operating_point(true_tier == t, scores[:, j], target_precision=target_precision,
                                name=t, random_state=rng, **kwargs)
                for j, t in enumerate(TIERS)
            ]  # fmt: skip
    return EvaluationReport(**report)
