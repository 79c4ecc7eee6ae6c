"""Champion and challenger (DESIGN "Champion vs challenger").

Both stand on today's evaluation labels: the challenger's report from training (measured once),
the champion re-scored at decision time. The rule itself (thresholds, evidence, reasons) is the
pure `active_learning.ml.promotion.decide`; this module scores, records and promotes.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from active_learning.ml.metrics import EvaluationReport
from active_learning.ml.promotion import (
    F1_TOLERANCE,
    GUARDED_TIER,
    METRIC_CHAMPION_UNUSABLE,
    MIN_EVAL_LABELS,
    MIN_EVAL_PER_CLASS,
    REASON_BETTER,
    REASON_F1_WORSE,
    REASON_NO_CHAMPION,
    REASON_NO_EVIDENCE,
    REASON_NOT_BETTER,
    REASON_RECALL_WORSE,
    RECALL_TOLERANCE,
    ComparedValues,
    PromotionDecision,
    decide,
)
from active_learning.models import ModelStatus, ModelVersion
from active_learning.selectors import champion_of, evaluation_set, project_classes
from active_learning.services.training import (
    EVAL_SNAPSHOT_KEY,
    evaluate_model,
    load_version,
    snapshot_hash,
)
from workbench.core.audit import audit_record

__all__ = [  # the rule itself lives in active_learning.ml.promotion
    "F1_TOLERANCE",
    "GUARDED_TIER",
    "MIN_EVAL_LABELS",
    "MIN_EVAL_PER_CLASS",
    "REASON_BETTER",
    "REASON_CHAMPION_UNUSABLE",
    "REASON_F1_WORSE",
    "REASON_NOT_BETTER",
    "REASON_NO_CHAMPION",
    "REASON_NO_EVIDENCE",
    "REASON_RECALL_WORSE",
    "RECALL_TOLERANCE",
    "ComparedValues",
    "PromotionDecision",
    "decide",
    "model_version_promote",
    "promotion_decide",
]

REASON_CHAMPION_UNUSABLE = "promoted: champion v{champion} cannot be scored ({error})"


def promotion_decide(*, challenger: ModelVersion) -> PromotionDecision:
    """Compare challenger and champion on today's evaluation labels, decide, record, promote.

    The challenger's report from training is reused while the evaluation labels are the ones it
    was measured on; only when labels arrived since (or for a row without that record) is the
    challenger scored again, so both sides always stand on the same labels. The champion is
    re-scored here.
    """
    project = challenger.project
    champion = champion_of(project=project)
    classes = project_classes(project=project)
    labels = evaluation_set(project=project)
    report = EvaluationReport.from_json(challenger.metrics)
    rescored = (challenger.params or {}).get(EVAL_SNAPSHOT_KEY) != snapshot_hash(labels)
    if rescored:
        report = evaluate_model(
            model=load_version(challenger), project=project, classes=classes, labels=labels
        )
    champion_report = None
    decision: PromotionDecision | None = None
    if champion is not None:
        try:
            champion_report = evaluate_model(
                model=load_version(champion), project=project, classes=classes, labels=labels
            )
        except Exception as exc:  # a missing or untrusted file, a model from another era
            reason = REASON_CHAMPION_UNUSABLE.format(champion=champion.number, error=exc)
            decision = PromotionDecision(
                promote=True, reason=reason[:1000], metric=METRIC_CHAMPION_UNUSABLE
            )
    if decision is None:
        decision = decide(
            challenger=report,
            champion=champion_report,
            champion_number=champion.number if champion else None,
            target_precision=project.target_precision,
        )
    challenger.decision = decision.to_json()
    challenger.decision_reason = decision.reason
    fields = ["decision", "decision_reason"]
    if rescored:
        challenger.metrics = report.to_json()
        challenger.n_eval = report.n_samples
        challenger.params = {**(challenger.params or {}), EVAL_SNAPSHOT_KEY: snapshot_hash(labels)}
        fields += ["metrics", "n_eval", "params"]
    challenger.save(update_fields=fields)
    if decision.promote:
        model_version_promote(version=challenger, actor=None, reason=decision.reason)
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
