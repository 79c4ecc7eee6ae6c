"""The promotion rule (DESIGN "Champion vs challenger"): two evaluation reports in, a decision out.

Promote when macro-F1 >= champion - 0.005 and recall at the target precision of the prohibited
tier >= champion - 0.01 (skipped when either side lacks evidence), and at least one is strictly
better. Fewer than 2 evaluation labels per class, or 50 in all, is not enough evidence: a
challenger is then promoted only over no champion. The decision names the metrics and values.
Pure: both reports must come from the same evaluation labels; the caller scores and records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from active_learning.ml.metrics import EvaluationReport

F1_TOLERANCE = 0.005
RECALL_TOLERANCE = 0.01
MIN_EVAL_LABELS = 50
MIN_EVAL_PER_CLASS = 2
GUARDED_TIER = "prohibited"

# `PromotionDecision.metric`: the metric that kept the champion, or why there was no comparison.
METRIC_EVIDENCE = "evidence"
METRIC_MACRO_F1 = "macro_f1"
METRIC_RECALL = "prohibited_recall"
METRIC_CHAMPION_UNUSABLE = "champion_unusable"

REASON_NO_CHAMPION = "promoted: there is no champion yet"
REASON_NO_EVIDENCE = (
    "kept champion v{champion}: not enough evidence ({n} evaluation labels, {short} classes "
    "with fewer than {per_class}; {needed} and {per_class} per class needed)"
)
REASON_F1_WORSE = "kept champion v{champion}: macro-F1 {new:.4f} < champion {old:.4f} - {tol}"
REASON_RECALL_WORSE = (
    "kept champion v{champion}: prohibited-tier recall at precision {target} {new:.4f} < "
    "champion {old:.4f} - {tol}"
)
REASON_NOT_BETTER = (
    "kept champion v{champion}: neither macro-F1 ({new:.4f} vs {old:.4f}) nor prohibited-tier "
    "recall at precision {target} ({new_recall} vs {old_recall}) is strictly better"
)
REASON_BETTER = (
    "promoted over v{champion}: macro-F1 {new:.4f} vs {old:.4f}; prohibited-tier recall at "
    "precision {target} {new_recall} vs {old_recall}"
)


@dataclass(frozen=True)
class ComparedValues:
    """One side's figures as the decision records them (prohibited recall None: no evidence)."""

    n_samples: int
    macro_f1: float | None
    accuracy: float | None
    ece: float | None
    prohibited_recall: float | None

    @classmethod
    def of(cls, report: EvaluationReport) -> ComparedValues:
        return cls(
            n_samples=report.n_samples,
            macro_f1=report.macro_f1,
            accuracy=report.accuracy,
            ece=report.ece,
            prohibited_recall=report.recall_at_target(GUARDED_TIER),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "macro_f1": self.macro_f1,
            "accuracy": self.accuracy,
            "ece": self.ece,
            "prohibited_recall": self.prohibited_recall,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ComparedValues:
        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            n_samples=int(data.get("n_samples", 0)),
            macro_f1=number("macro_f1"),
            accuracy=number("accuracy"),
            ece=number("ece"),
            prohibited_recall=number("prohibited_recall"),
        )


@dataclass(frozen=True)
class PromotionDecision:
    """Promote or keep, in words, with the values compared (what ``ModelVersion.decision`` holds).

    ``metric`` names what kept the champion (``evidence``, ``macro_f1``, ``prohibited_recall``)
    or ``champion_unusable``; None when the challenger won on the metrics or had no champion.
    ``champion`` is None when there was no champion (or it could not be scored); ``challenger``
    is None only when no comparison ran.
    """

    promote: bool
    reason: str
    metric: str | None = None
    challenger: ComparedValues | None = None
    champion: ComparedValues | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored form: the sides and `metric` appear only when present."""
        out: dict[str, Any] = {}
        if self.challenger is not None:
            out["challenger"] = self.challenger.to_json()
        if self.champion is not None:
            out["champion"] = self.champion.to_json()
        out["promote"] = self.promote
        out["reason"] = self.reason
        if self.metric is not None:
            out["metric"] = self.metric
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PromotionDecision:
        data = data or {}
        sides = {
            side: ComparedValues.from_json(data[side]) if data.get(side) else None
            for side in ("challenger", "champion")
        }
        return cls(
            promote=bool(data.get("promote", False)),
            reason=str(data.get("reason", "")),
            metric=data.get("metric"),
            challenger=sides["challenger"],
            champion=sides["champion"],
        )


def _fmt(value: float | None) -> str:
    return "n/a (not enough evidence)" if value is None else f"{value:.4f}"


def decide(
    *,
    challenger: EvaluationReport,
    champion: EvaluationReport | None,
    champion_number: int | None,
    target_precision: float | None,
) -> PromotionDecision:
    """The decision for two reports measured on the same evaluation labels.

    Parameters
    ----------
    challenger, champion : EvaluationReport
        ``champion`` None when the project has none.
    champion_number : int or None
        The champion's version number, named in the reason.
    target_precision : float or None
        The precision at which the prohibited tier's recall is compared, named in the reason.
    """
    mine = ComparedValues.of(challenger)
    if champion is None:
        return PromotionDecision(promote=True, reason=REASON_NO_CHAMPION, challenger=mine)
    theirs = ComparedValues.of(champion)

    def keep(reason: str, metric: str) -> PromotionDecision:
        return PromotionDecision(False, reason, metric, challenger=mine, champion=theirs)

    n, short = challenger.n_samples, challenger.classes_short_of(MIN_EVAL_PER_CLASS)
    new_f1, old_f1 = challenger.macro_f1, champion.macro_f1
    if n < MIN_EVAL_LABELS or short or new_f1 is None or old_f1 is None:
        reason = REASON_NO_EVIDENCE.format(
            champion=champion_number, n=n, short=short, per_class=MIN_EVAL_PER_CLASS,
            needed=MIN_EVAL_LABELS,
        )  # fmt: skip
        return keep(reason, METRIC_EVIDENCE)
    new_recall = challenger.recall_at_target(GUARDED_TIER)
    old_recall = champion.recall_at_target(GUARDED_TIER)
    values = {"champion": champion_number, "new": new_f1, "old": old_f1, "target": target_precision}
    if new_f1 < old_f1 - F1_TOLERANCE:
        reason = REASON_F1_WORSE.format(**values, tol=F1_TOLERANCE)
        return keep(reason, METRIC_MACRO_F1)
    recall_better = False
    if new_recall is not None and old_recall is not None:  # else skipped: a side lacks evidence
        if new_recall < old_recall - RECALL_TOLERANCE:
            reason = REASON_RECALL_WORSE.format(
                champion=champion_number, target=target_precision, new=new_recall,
                old=old_recall, tol=RECALL_TOLERANCE,
            )  # fmt: skip
            return keep(reason, METRIC_RECALL)
        recall_better = new_recall > old_recall
    shown = {**values, "new_recall": _fmt(new_recall), "old_recall": _fmt(old_recall)}
    if not (new_f1 > old_f1 or recall_better):
        return keep(REASON_NOT_BETTER.format(**shown), METRIC_MACRO_F1)
    return PromotionDecision(True, REASON_BETTER.format(**shown), challenger=mine, champion=theirs)
