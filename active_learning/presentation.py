"""A model version's stored JSON (metrics, decision, params) as rows people can read.

Light on purpose (the admin and the dashboard load it in web processes): it reads the stored
dicts directly, never `EvaluationReport` (whose module imports scikit-learn). Class ids stored as
strings ("7") become class names; intervals become (low, high) pairs; missing figures are None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from active_learning.ml.progress import labels_to_narrow

TIER_ORDER = ("supportable", "restricted", "prohibited")
GUARDED_TIER = "prohibited"
NARROW_TO = 0.02  # the interval half-width an operating point's "labels to narrow" aims at


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = number(value[0]), number(value[1])
        if low is not None and high is not None:
            return (low, high)
    return None


@dataclass(frozen=True)
class ClassRow:
    """Precision, recall, F1 and support of one class or tier at the argmax decision."""

    name: str
    tier: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int
    eval_labels: int | None


@dataclass(frozen=True)
class PointRow:
    """One operating point: the threshold reaching the target precision and what it buys.

    `labels_to_narrow`: more evaluation labels (at this class's share of them) for the recall's
    95% interval to be within +-NARROW_TO; 0 when it already is, None when no estimate is possible.
    """

    kind: str  # "tier" or "class"
    name: str
    tier: str
    target: float | None
    threshold: float | None
    precision: float | None
    precision_ci: tuple[float, float] | None
    recall: float | None
    recall_ci: tuple[float, float] | None
    n_positives: int
    n_samples: int
    enough_evidence: bool
    reason: str
    more_labels_needed: int | None
    labels_to_narrow: int | None

    @property
    def evidence_text(self) -> str:
        return "proven" if self.enough_evidence else f"not enough evidence ({self.reason})"


def class_names(classes: Mapping[int, tuple[str, str]], key: Any) -> tuple[str, str]:
    """(name, tier) of a stored class key ("7", 7 or a tier name)."""
    raw = str(key)
    if raw.isdigit() and int(raw) in classes:
        return classes[int(raw)]
    if raw in TIER_ORDER:
        return (raw, raw)
    return (f"class #{raw}", "")


def class_rows(
    metrics: Mapping[str, Any], classes: Mapping[int, tuple[str, str]]
) -> list[ClassRow]:
    counts = metrics.get("eval_labels_per_class") or {}
    rows = []
    for raw in metrics.get("per_class") or []:
        name, tier = class_names(classes, raw.get("name"))
        rows.append(
            ClassRow(
                name=name,
                tier=tier,
                precision=number(raw.get("precision")),
                recall=number(raw.get("recall")),
                f1=number(raw.get("f1")),
                support=int(raw.get("support") or 0),
                eval_labels=counts.get(str(raw.get("name"))),
            )
        )
    return rows


def tier_rows(metrics: Mapping[str, Any]) -> list[ClassRow]:
    return [
        ClassRow(
            name=str(raw.get("name")),
            tier=str(raw.get("name")),
            precision=number(raw.get("precision")),
            recall=number(raw.get("recall")),
            f1=number(raw.get("f1")),
            support=int(raw.get("support") or 0),
            eval_labels=None,
        )
        for raw in metrics.get("per_tier") or []
    ]


def point_rows(
    metrics: Mapping[str, Any], classes: Mapping[int, tuple[str, str]]
) -> list[PointRow]:
    """Tier points first (in tier order), then classes by tier and name."""
    rows: list[PointRow] = []
    for kind, key in (("tier", "tier_operating_points"), ("class", "class_operating_points")):
        for raw in metrics.get(key) or []:
            name, tier = class_names(classes, raw.get("name"))
            n = int(raw.get("n_samples") or 0)
            positives = int(raw.get("n_positives") or 0)
            recall = number(raw.get("recall"))
            rows.append(
                PointRow(
                    kind=kind,
                    name=name,
                    tier=tier,
                    target=number(raw.get("target_precision")),
                    threshold=number(raw.get("threshold")),
                    precision=number(raw.get("precision")),
                    precision_ci=interval(raw.get("precision_ci")),
                    recall=recall,
                    recall_ci=interval(raw.get("recall_ci")),
                    n_positives=positives,
                    n_samples=n,
                    enough_evidence=bool(raw.get("enough_evidence")),
                    reason=str(raw.get("reason") or ""),
                    more_labels_needed=(
                        int(raw["more_labels_needed"])
                        if isinstance(raw.get("more_labels_needed"), int)
                        else None
                    ),
                    labels_to_narrow=labels_to_narrow(
                        recall=recall, n_positives=positives, n_samples=n, half_width=NARROW_TO
                    ),
                )
            )
    order = {t: i for i, t in enumerate(TIER_ORDER)}
    return sorted(rows, key=lambda r: (r.kind != "tier", order.get(r.tier, 9), r.name.casefold()))


@dataclass(frozen=True)
class Headline:
    """One model's headline figures on the evaluation labels it was measured on."""

    n_eval: int
    macro_f1: float | None
    macro_f1_ci: tuple[float, float] | None
    accuracy: float | None
    ece: float | None
    brier: float | None
    prohibited_recall: float | None
    prohibited_recall_ci: tuple[float, float] | None
    prohibited_proven: bool
    prohibited_reason: str
    target: float | None
    weighted: bool
    n_effective: float | None


def headline(metrics: Mapping[str, Any] | None) -> Headline:
    metrics = metrics or {}
    point: Mapping[str, Any] = next(
        (p for p in metrics.get("tier_operating_points") or [] if p.get("name") == GUARDED_TIER),
        {},
    )
    return Headline(
        n_eval=int(metrics.get("n_samples") or 0),
        macro_f1=number(metrics.get("macro_f1")),
        macro_f1_ci=interval(metrics.get("macro_f1_ci")),
        accuracy=number(metrics.get("accuracy")),
        ece=number(metrics.get("ece")),
        brier=number(metrics.get("brier")),
        prohibited_recall=number(point.get("recall")),
        prohibited_recall_ci=interval(point.get("recall_ci")),
        prohibited_proven=bool(point.get("enough_evidence")),
        prohibited_reason=str(point.get("reason") or ("not measured" if not point else "")),
        target=number(point.get("target_precision")),
        weighted=bool(metrics.get("weighted")),
        n_effective=number(metrics.get("n_effective")),
    )


def decision_sentence(number_: int, decision: Mapping[str, Any] | None, reason: str) -> str:
    """ "v3 was not promoted: kept champion v2: ..." ("" when nothing was decided)."""
    decision = decision or {}
    text = reason or str(decision.get("reason") or "")
    if not decision and not text:
        return ""
    if decision.get("promote"):
        verb = "provisionally promoted" if decision.get("provisional") else "promoted"
    elif decision:
        verb = "not promoted"
    else:
        verb = "decided"
    return f"v{number_} was {verb}: {text}" if text else f"v{number_} was {verb}."
