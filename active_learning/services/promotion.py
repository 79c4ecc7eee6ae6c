"""Champion and challenger (DESIGN "Champion vs challenger").

Both are scored on today's evaluation labels (the champion re-scored at decision time). Promote
when macro-F1 >= champion - 0.005 and recall at the target precision of the prohibited tier >=
champion - 0.01 (skipped when either side lacks evidence), and at least one is strictly better.
Fewer than 2 evaluation labels per class, or 50 in all, is not enough evidence: a challenger is
then promoted only over no champion. The decision names the metrics and values.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from active_learning.models import ModelStatus, ModelVersion
from active_learning.selectors import champion_of, evaluation_set, project_classes
from active_learning.services.training import evaluate_model, load_version
from workbench.core.audit import audit_record

F1_TOLERANCE = 0.005
RECALL_TOLERANCE = 0.01
MIN_EVAL_LABELS = 50
MIN_EVAL_PER_CLASS = 2
GUARDED_TIER = "prohibited"

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


def guarded_recall(metrics: dict[str, Any]) -> float | None:
    """Recall at the target precision of the prohibited tier, None without evidence."""
    for point in metrics.get("tier_operating_points", []):
        if point["name"] == GUARDED_TIER and point["enough_evidence"]:
            return float(point["recall"])
    return None


def evidence_shortfall(metrics: dict[str, Any]) -> tuple[int, int]:
    """(evaluation labels, classes with fewer than MIN_EVAL_PER_CLASS of them)."""
    per_class = metrics.get("eval_labels_per_class", {})
    short = sum(1 for n in per_class.values() if n < MIN_EVAL_PER_CLASS)
    return int(metrics.get("n_samples", 0)), short


def decide(
    *, challenger: dict[str, Any], champion: dict[str, Any] | None, champion_number: int | None
) -> dict[str, Any]:
    """The promotion decision for two metric dicts measured on the same evaluation labels."""
    if champion is None:
        return {"promote": True, "reason": REASON_NO_CHAMPION, "challenger": _summary(challenger)}
    n, short = evidence_shortfall(challenger)
    decision: dict[str, Any] = {"challenger": _summary(challenger), "champion": _summary(champion)}
    if n < MIN_EVAL_LABELS or short:
        reason = REASON_NO_EVIDENCE.format(
            champion=champion_number, n=n, short=short, per_class=MIN_EVAL_PER_CLASS,
            needed=MIN_EVAL_LABELS,
        )  # fmt: skip
        return {**decision, "promote": False, "reason": reason, "metric": "evidence"}
    new_f1, old_f1 = challenger["macro_f1"], champion["macro_f1"]
    new_recall, old_recall = guarded_recall(challenger), guarded_recall(champion)
    target = challenger.get("tier_operating_points", [{}])[0].get("target_precision")
    values = {"champion": champion_number, "new": new_f1, "old": old_f1, "target": target}
    if new_f1 < old_f1 - F1_TOLERANCE:
        reason = REASON_F1_WORSE.format(**values, tol=F1_TOLERANCE)
        return {**decision, "promote": False, "reason": reason, "metric": "macro_f1"}
    recall_compared = new_recall is not None and old_recall is not None
    if recall_compared and new_recall < old_recall - RECALL_TOLERANCE:  # type: ignore[operator]
        reason = REASON_RECALL_WORSE.format(
            champion=champion_number, target=target, new=new_recall, old=old_recall,
            tol=RECALL_TOLERANCE,
        )  # fmt: skip
        return {**decision, "promote": False, "reason": reason, "metric": "prohibited_recall"}
    better = new_f1 > old_f1 or (recall_compared and new_recall > old_recall)  # type: ignore[operator]
    shown = {**values, "new_recall": _fmt(new_recall), "old_recall": _fmt(old_recall)}
    if not better:
        return {
            **decision,
            "promote": False,
            "reason": REASON_NOT_BETTER.format(**shown),
            "metric": "macro_f1",
        }
    return {**decision, "promote": True, "reason": REASON_BETTER.format(**shown)}


def _fmt(value: float | None) -> str:
    return "n/a (not enough evidence)" if value is None else f"{value:.4f}"


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "n_samples": metrics.get("n_samples", 0),
        "macro_f1": metrics.get("macro_f1"),
        "accuracy": metrics.get("accuracy"),
        "ece": metrics.get("ece"),
        "prohibited_recall": guarded_recall(metrics),
    }


REASON_CHAMPION_UNUSABLE = "promoted: champion v{champion} cannot be scored ({error})"


def promotion_decide(*, challenger: ModelVersion) -> dict[str, Any]:
    """Score challenger and champion on one snapshot of today's evaluation labels, decide,
    record, and promote."""
    project = challenger.project
    champion = champion_of(project=project)
    classes = project_classes(project=project)
    labels = evaluation_set(project=project)
    challenger_metrics = evaluate_model(
        model=load_version(challenger), project=project, classes=classes, labels=labels
    )
    champion_metrics = None
    decision: dict[str, Any] | None = None
    if champion is not None:
        try:
            champion_metrics = evaluate_model(
                model=load_version(champion), project=project, classes=classes, labels=labels
            )
        except Exception as exc:  # a missing or untrusted file, a model from another era
            reason = REASON_CHAMPION_UNUSABLE.format(champion=champion.number, error=exc)
            decision = {"promote": True, "reason": reason[:1000], "metric": "champion_unusable"}
    if decision is None:
        decision = decide(
            challenger=challenger_metrics,
            champion=champion_metrics,
            champion_number=champion.number if champion else None,
        )
    challenger.metrics = challenger_metrics
    challenger.decision = decision
    challenger.decision_reason = decision["reason"]
    challenger.save(update_fields=["metrics", "decision", "decision_reason"])
    if decision["promote"]:
        model_version_promote(version=challenger, actor=None, reason=decision["reason"])
    return decision


@transaction.atomic
def model_version_promote(*, version: ModelVersion, actor: Any, reason: str) -> ModelVersion:
    """Make `version` the champion (also how an admin rolls back to an older version)."""
    if version.status not in (ModelStatus.READY, ModelStatus.RETIRED, ModelStatus.CHAMPION):
        raise ValueError(f"v{version.number} is {version.status} and cannot be promoted.")
    current = (
        ModelVersion.objects.select_for_update()
        .filter(project=version.project, status=ModelStatus.CHAMPION)
        .first()
    )
    if current is not None and current.pk == version.pk:
        return version
    if current is not None:
        current.status = ModelStatus.RETIRED
        current.save(update_fields=["status"])
    version.status = ModelStatus.CHAMPION
    version.promoted_at = timezone.now()
    if actor is not None:
        version.decision_reason = reason
    version.save(update_fields=["status", "promoted_at", "decision_reason"])
    audit_record(
        actor=actor,
        action="model.promote",
        obj=version,
        project=version.project,
        before={"champion": current.number if current else None},
        after={"champion": version.number, "reason": reason},
    )
    return version
