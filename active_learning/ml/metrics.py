"""Evaluation metrics: accuracy, macro-F1, per-class and per-tier precision/recall, operating points.

Vocabulary: ``proba`` (n_samples, n_classes) with columns in ``classes`` order; ``tiers`` maps each
class to ``supportable``, ``restricted`` or ``prohibited``; a case's tier score is the sum of its
probabilities over that tier's classes. Operating points live in ``operating_points``;
results are dataclasses; ``EvaluationReport.to_json()``/``from_json()`` are the stored form.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from active_learning.ml.calibration import brier_score, expected_calibration_error
from active_learning.ml.operating_points import (
    OperatingPoint,
    effective_weights,
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

    A weighted report (``weighted``) estimates the figures of the whole evaluation split from a
    sample drawn with unequal inclusion probabilities: every figure weighs each case by its
    inverse inclusion probability; ``n_effective`` is Kish's effective sample size, and
    ``macro_f1_ci``/``accuracy_ci`` are 95% bootstrap intervals over the weighted sample.
    ``eval_labels_per_class`` and ``n_samples`` stay raw counts (the evidence rule reads them).
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
    weighted: bool = False
    n_effective: float | None = None
    macro_f1_ci: tuple[float, float] | None = None
    accuracy_ci: tuple[float, float] | None = None

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

    def classes_short_of(self, per_class: int, waived: Collection[str] = ()) -> int:
        """How many classes have fewer than `per_class` evaluation labels (classes in `waived`,
        ids as strings, are not counted)."""
        return sum(
            1 for c, n in self.eval_labels_per_class.items() if n < per_class and c not in waived
        )

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
            weighted=bool(data.get("weighted", False)),
            n_effective=_float(data.get("n_effective")),
            macro_f1_ci=_interval(data.get("macro_f1_ci")),
            accuracy_ci=_interval(data.get("accuracy_ci")),
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


def _per_label(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[Any], weights: np.ndarray | None
) -> list[ClassMetrics]:
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=list(labels), zero_division=0, sample_weight=weights
    )
    # support stays the raw count of true members, weighted or not
    return [
        ClassMetrics(str(c), float(p[i]), float(r[i]), float(f[i]), int(np.sum(y_true == c)))
        for i, c in enumerate(labels)
    ]


def bootstrap_intervals(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    classes: Sequence[Any],
    sample_weight: np.ndarray | None,
    n_bootstrap: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """Percentile bootstrap intervals of macro-F1 (over `classes`) and accuracy.

    Replicates reweigh the (weighted) sample with Poisson(1) counts, the usual fast stand-in for
    resampling cases; each replicate's confusion counts are one matrix product.
    """
    n = len(y_true)
    if n == 0 or n_bootstrap <= 0 or not classes:
        return None, None
    base = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    truth = np.stack([y_true == c for c in classes], axis=1).astype(float)
    predicted = np.stack([y_pred == c for c in classes], axis=1).astype(float)
    correct = (y_true == y_pred).astype(float)
    f1s, accuracies = [], []
    for start in range(0, n_bootstrap, 100):  # chunks bound memory at 100 x n_samples
        w = rng.poisson(1.0, size=(min(100, n_bootstrap - start), n)) * base
        tp, n_true, n_pred = w @ (truth * predicted), w @ truth, w @ predicted
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(n_true + n_pred > 0, 2 * tp / (n_true + n_pred), 0.0)
        f1s.append(f1.mean(axis=1))
        total = w.sum(axis=1)
        accuracies.append(np.where(total > 0, (w @ correct) / np.maximum(total, 1e-12), 0.0))
    tail = 100 * (1 - confidence) / 2
    f1_all, accuracy_all = np.concatenate(f1s), np.concatenate(accuracies)
    return (
        (float(np.percentile(f1_all, tail)), float(np.percentile(f1_all, 100 - tail))),
        (float(np.percentile(accuracy_all, tail)), float(np.percentile(accuracy_all, 100 - tail))),
    )


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
    sample_weight: Any = None,
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
    sample_weight : array-like of shape (n_samples,), optional
        Inverse inclusion probabilities of a sample drawn with unequal probabilities: every
        figure becomes a (Hajek) estimate for the population sampled; equal weights give the
        unweighted figures.

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
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    kwargs: dict[str, Any] = {
        "confidence": confidence,
        "min_positives": min_positives,
        "n_bootstrap": n_bootstrap,
        "sample_weight": w,
    }
    f1_ci, accuracy_ci = bootstrap_intervals(
        y, y_pred, classes=present, sample_weight=w, n_bootstrap=n_bootstrap, rng=rng
    )
    report: dict[str, Any] = {
        "n_samples": len(y),
        "accuracy": float(accuracy_score(y, y_pred, sample_weight=w)),
        "macro_f1": float(
            f1_score(y, y_pred, labels=present, average="macro", zero_division=0, sample_weight=w)
        ),
        "ece": expected_calibration_error(y, proba, classes=classes, sample_weight=w),
        "brier": brier_score(y, proba, classes=classes, sample_weight=w),
        "per_class": _per_label(y, y_pred, classes, w),
        "eval_labels_per_class": {str(c): int(np.sum(y == c)) for c in classes},
        "weighted": w is not None,
        "n_effective": float(effective_weights(w, len(y)).sum()) if len(y) else 0.0,
        "macro_f1_ci": f1_ci,
        "accuracy_ci": accuracy_ci,
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
        report["per_tier"] = _per_label(true_tier, pred_tier, TIERS, w)
        if target_precision is not None:
            report["tier_operating_points"] = [
                operating_point(true_tier == t, scores[:, j], target_precision=target_precision,
                                name=t, random_state=rng, **kwargs)
                for j, t in enumerate(TIERS)
            ]  # fmt: skip
    return EvaluationReport(**report)
