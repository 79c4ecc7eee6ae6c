"""Evaluation metrics: accuracy, macro-F1, per-class and per-tier precision/recall, operating points.

Vocabulary: ``proba`` (n_samples, n_classes) with columns in ``classes`` order; ``tiers`` maps each
class to ``supportable``, ``restricted`` or ``prohibited``; a case's tier score is the sum of its
probabilities over that tier's classes. Operating points live in ``operating_points``;
results are dataclasses; ``EvaluationReport.to_json()``/``from_json()`` are the stored form.
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
    """All evaluation figures of one model on one labelled set: what ``ModelVersion.metrics`` holds.

    An empty report (no evaluation labels) has ``n_samples == 0`` and None figures; it is stored
    as ``{"n_samples": 0}``. ``eval_labels_per_class`` counts the true labels of each class (keys
    are ``str(class)``); an operating point's ``enough_evidence`` says whether its precision is
    proven. ``brier`` is None only in rows stored without it.
    """

    n_samples: int
    accuracy: float | None = None
    macro_f1: float | None = None
    ece: float | None = None
    brier: float | None = None
    per_class: list[ClassMetrics] = field(default_factory=list)
    per_tier: list[ClassMetrics] = field(default_factory=list)
    class_operating_points: list[OperatingPoint] = field(default_factory=list)
    tier_operating_points: list[OperatingPoint] = field(default_factory=list)
    eval_labels_per_class: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> EvaluationReport:
        """The report of a model with no evaluation labels to measure it on."""
        return cls(n_samples=0)

    @property
    def is_empty(self) -> bool:
        return self.n_samples == 0

    @property
    def target_precision(self) -> float | None:
        """The precision the operating points were set at (None without operating points)."""
        for point in (*self.tier_operating_points, *self.class_operating_points):
            return point.target_precision
        return None

    def tier_point(self, tier: str) -> OperatingPoint | None:
        """The operating point of `tier` (one of TIERS), None when not measured."""
        return next((p for p in self.tier_operating_points if p.name == tier), None)

    def recall_at_target(self, tier: str) -> float | None:
        """Recall of `tier` at the target precision; None when that point lacks evidence."""
        point = self.tier_point(tier)
        if point is None or not point.enough_evidence or point.recall is None:
            return None
        return float(point.recall)

    def classes_short_of(self, per_class: int) -> int:
        """How many classes have fewer than `per_class` evaluation labels."""
        return sum(1 for n in self.eval_labels_per_class.values() if n < per_class)

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in ``ModelVersion.metrics`` (``{"n_samples": 0}`` when empty)."""
        if self.is_empty:
            return {"n_samples": 0}
        return asdict(self)

    to_dict = to_json

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> EvaluationReport:
        """Read a stored report; keys missing from older rows read as None or empty."""
        data = data or {}
        return cls(
            n_samples=int(data.get("n_samples", 0)),
            accuracy=_float(data.get("accuracy")),
            macro_f1=_float(data.get("macro_f1")),
            ece=_float(data.get("ece")),
            brier=_float(data.get("brier")),
            per_class=[_class_metrics(m) for m in data.get("per_class") or []],
            per_tier=[_class_metrics(m) for m in data.get("per_tier") or []],
            class_operating_points=[
                _operating_point(p) for p in data.get("class_operating_points") or []
            ],
            tier_operating_points=[
                _operating_point(p) for p in data.get("tier_operating_points") or []
            ],
            eval_labels_per_class={
                str(k): int(v) for k, v in (data.get("eval_labels_per_class") or {}).items()
            },
        )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _interval(value: Any) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def _class_metrics(data: Mapping[str, Any]) -> ClassMetrics:
    return ClassMetrics(
        name=str(data.get("name", "")),
        precision=float(data.get("precision", 0.0)),
        recall=float(data.get("recall", 0.0)),
        f1=float(data.get("f1", 0.0)),
        support=int(data.get("support", 0)),
    )


def _operating_point(data: Mapping[str, Any]) -> OperatingPoint:
    def count(key: str) -> int:
        return int(data.get(key) or 0)

    def optional_int(key: str) -> int | None:
        value = data.get(key)
        return None if value is None else int(value)

    return OperatingPoint(
        name=str(data.get("name", "")),
        target_precision=float(data.get("target_precision", 0.0)),
        confidence=float(data.get("confidence", 0.95)),
        threshold=_float(data.get("threshold")),
        precision=_float(data.get("precision")),
        precision_ci=_interval(data.get("precision_ci")),
        precision_lower_bound=_float(data.get("precision_lower_bound")),
        recall=_float(data.get("recall")),
        recall_ci=_interval(data.get("recall_ci")),
        n_samples=count("n_samples"),
        n_positives=count("n_positives"),
        n_predicted=count("n_predicted"),
        n_true_positives=count("n_true_positives"),
        enough_evidence=bool(data.get("enough_evidence", False)),
        reason=data.get("reason"),
        more_positives_needed=optional_int("more_positives_needed"),
        more_labels_needed=optional_int("more_labels_needed"),
    )


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
        "eval_labels_per_class": {str(c): int(np.sum(y == c)) for c in classes},
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
