"""Champion and challenger (DESIGN "Champion vs challenger").

Both stand on today's evaluation labels, weighted by the evaluation design: the challenger's
report from training (measured once), the champion re-scored at decision time, and the paired
prohibited-tier guard from both models' scores on the same labels. While those labels are too few
(`evaluation_evidence_short`), both are judged instead on the pool probe's labels (a uniform
random share of the pool picks), refitted out of fold, and the evaluation labels there are
(`services.warmup`), and a promotion is provisional. The rules themselves (thresholds,
evidence, reasons) are the pure `active_learning.ml.promotion.decide`/`decide_warmup`; this
module scores, records and promotes, and records on the project whether evidence is short (the
claim draw serves more evaluation items while it is).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from active_learning.ml.metrics import EvaluationReport
from active_learning.ml.paired import PairedRecall, paired_recall
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
    decide_warmup,
    evaluation_evidence_short,
)
from active_learning.models import ModelStatus, ModelVersion
from active_learning.selectors import (
    LabelSet,
    champion_of,
    classes_evaluation_cannot_show,
    evaluation_set,
    project_classes,
)
from active_learning.services.embeddings import embedded_only, model_in_use
from active_learning.services.training import (
    EVAL_SNAPSHOT_KEY,
    load_version,
    paired_f1_of,
    proba_of,
    prohibited_scores,
    report_of,
    snapshot_hash,
)
from active_learning.services.warmup import warmup_compare, warmup_evidence
from labeling.models import LabelClass, Project, Tier
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
    """Compare challenger and champion, decide, record, promote.

    On today's evaluation labels when they suffice: the challenger's report from training is
    reused while those labels are the ones it was measured on (else re-measured, so both sides
    stand on the same labels); the champion is re-scored here, and the paired guard compares both
    models' prohibited-tier scores on the same labels. When they do not suffice, the warm-up
    comparison on the pool probe's and evaluation labels decides, provisionally.
    """
    project = challenger.project
    champion = champion_of(project=project)
    classes = project_classes(project=project)
    labels = embedded_only(evaluation_set(project=project))
    if champion is not None and champion.embedding_model != challenger.embedding_model:
        # A backend change: both sides stand on the labels both kinds of vectors cover.
        labels = embedded_only(labels, model_name=champion.embedding_model or None)
    report = EvaluationReport.from_json(challenger.metrics)
    rescored = (challenger.params or {}).get(EVAL_SNAPSHOT_KEY) != snapshot_hash(labels)
    challenger_proba = _proba(challenger, labels, classes)
    if rescored:
        report = _report(project, classes, labels, challenger_proba)
    waived = classes_evaluation_cannot_show(
        project=project, classes=classes, per_class=MIN_EVAL_PER_CLASS
    )
    _evidence_record(project, short=evaluation_evidence_short(report, waived))
    decision: PromotionDecision | None = None
    champion_report, champion_proba = None, None
    if champion is not None:
        try:
            champion_proba = _proba(champion, labels, classes)
            champion_report = _report(project, classes, labels, champion_proba)
        except Exception as exc:  # a missing or untrusted file, a model from another era
            reason = REASON_CHAMPION_UNUSABLE.format(champion=champion.number, error=exc)
            decision = PromotionDecision(
                promote=True, reason=reason[:1000], metric=METRIC_CHAMPION_UNUSABLE
            )
    if decision is None and champion is not None and evaluation_evidence_short(report, waived):
        assert champion_report is not None
        decision = _warmup_decision(project, challenger, champion, classes, report, waived)
    if decision is None:
        guard, paired_f1 = None, None
        if champion_proba is not None and challenger_proba is not None:
            guard = _guard(project, classes, labels, champion_proba, challenger_proba)
            paired_f1 = paired_f1_of(
                classes, labels.labels, champion_proba, challenger_proba, labels.weights
            )
        decision = decide(
            challenger=report,
            champion=champion_report,
            champion_number=champion.number if champion else None,
            target_precision=project.target_precision,
            guard=guard,
            waived=waived,
            paired_f1=paired_f1,
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


def _proba(version: ModelVersion, labels: LabelSet, classes: list[LabelClass]) -> Any:
    """`version`'s probabilities on the evaluation labels (None when there are none)."""
    if len(labels) == 0:
        return None
    with model_in_use(version.embedding_model or None):  # the vectors it was trained on
        return proba_of(load_version(version), labels, classes)


def _report(
    project: Project, classes: list[LabelClass], labels: LabelSet, proba: Any
) -> EvaluationReport:
    if proba is None:
        return EvaluationReport.empty()
    return report_of(
        project=project, classes=classes, y=labels.labels, proba=proba, weights=labels.weights
    )


def _guard(
    project: Project, classes: list[LabelClass], labels: LabelSet, old: Any, new: Any
) -> PairedRecall:
    prohibited = [c.pk for c in classes if c.tier == Tier.PROHIBITED]
    return paired_recall(
        [label in prohibited for label in labels.labels.tolist()],
        prohibited_scores(old, classes),
        prohibited_scores(new, classes),
        target_precision=project.target_precision,
        sample_weight=labels.weights,
        tolerance=RECALL_TOLERANCE,
    )


def _warmup_decision(
    project: Project,
    challenger: ModelVersion,
    champion: ModelVersion,
    classes: list[LabelClass],
    evaluation: EvaluationReport,
    waived: frozenset[str],
) -> PromotionDecision:
    """The provisional decision while evaluation evidence is short (kept without enough of the
    pool probe's and evaluation labels for a comparison either)."""
    comparison = warmup_compare(
        project=project, champion=champion, challenger_version=challenger, classes=classes
    )
    if comparison is not None:
        n_probe, n_evaluation = comparison.n_probe, comparison.n_evaluation
    else:
        evidence = warmup_evidence(project=project)
        n_probe, n_evaluation = len(evidence.probe), len(evidence.evaluation)
    empty = EvaluationReport.empty()
    return decide_warmup(
        challenger=comparison.challenger if comparison else empty,
        champion=comparison.champion if comparison else empty,
        champion_number=champion.number,
        target_precision=project.target_precision,
        guard=comparison.guard if comparison else None,
        evaluation=evaluation,
        n_folds=comparison.n_folds if comparison else 0,
        n_labels=n_probe,
        n_classes=len(classes),
        paired_f1=comparison.paired_f1 if comparison else None,
        waived=waived,
        n_evaluation=n_evaluation,
    )


def _evidence_record(project: Project, *, short: bool) -> None:
    if project.evaluation_evidence_short != short:
        project.evaluation_evidence_short = short
        Project.objects.filter(pk=project.pk).update(evaluation_evidence_short=short)


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
