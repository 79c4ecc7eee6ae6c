"""The model side's answers to labeling's questions (`labeling.hooks`), registered at app ready.

Light on purpose: web processes load this, so nothing here imports scikit-learn or torch.
"""

from __future__ import annotations

from active_learning.models import LabelIssue, ModelStatus, ModelVersion, Prediction
from labeling import hooks
from labeling.contracts import (
    CaseModelFacts,
    CaseSearchPaths,
    ChampionSummary,
    DecisionSummary,
    ExportSources,
    ModelFacts,
    ReviewFacts,
)
from labeling.models import Case, LabelClass, Project
from workbench.core.models import Job


def champion(*, project: Project) -> ChampionSummary | None:
    version = (
        ModelVersion.objects.filter(project_id=project.pk, status=ModelStatus.CHAMPION)
        .only("pk", "number", "metrics")
        .first()
    )
    if version is None:
        return None
    macro_f1 = (version.metrics or {}).get("macro_f1")
    return ChampionSummary(
        model_version_id=version.pk,
        number=version.number,
        macro_f1=float(macro_f1) if isinstance(macro_f1, int | float) else None,
    )


def last_decision(*, project: Project) -> DecisionSummary | None:
    """The newest version with a recorded promotion decision (an admin's hand promotion
    rewrites only the reason, so the reason is read from the row)."""
    row = (
        ModelVersion.objects.filter(project_id=project.pk)
        .exclude(decision={})
        .order_by("-number")
        .values_list("number", "decision", "decision_reason")
        .first()
    )
    if row is None:
        return None
    number, decision, reason = row
    decision = decision if isinstance(decision, dict) else {}
    return DecisionSummary(
        number=int(number),
        promoted=bool(decision.get("promote")),
        reason=str(reason or decision.get("reason") or ""),
        provisional=bool(decision.get("provisional")),
    )


def prediction_facts(prediction: Prediction) -> ModelFacts:
    """A prediction row as the facts a card or an annotation's `shown` records."""
    top = [r for r in (prediction.top_k or []) if isinstance(r, list | tuple) and len(r) == 2]
    return ModelFacts(
        model_version_id=prediction.model_version_id,
        suggestion_id=prediction.predicted_label_id,
        suggestion_p=round(float(prediction.confidence), 4),
        alternatives=tuple(
            (int(c), round(float(p), 4))
            for c, p in top
            if int(c) != (prediction.predicted_label_id or 0)
        ),
    )


def case_facts(*, case: Case) -> CaseModelFacts:
    predictions = list(
        Prediction.objects.filter(case=case)
        .select_related("model_version", "predicted_label")
        .order_by("-model_version__number")
    )
    names = {c.pk: str(c) for c in LabelClass.objects.filter(project_id=case.project_id)}
    current = None
    for prediction in predictions:
        rows = [r for r in (prediction.top_k or []) if isinstance(r, list | tuple) and len(r) == 2]
        prediction.top_named = [(names.get(int(c), f"#{c}"), float(p)) for c, p in rows]  # type: ignore[attr-defined]
        if prediction.model_version.status == ModelStatus.CHAMPION:
            current = prediction_facts(prediction)
    issue = (
        LabelIssue.objects.filter(case=case)
        .select_related("given_label", "suggested_label")
        .first()
    )
    return CaseModelFacts(predictions=tuple(predictions), issue=issue, champion=current)


def review_facts(*, case_id: int) -> ReviewFacts | None:
    row = (
        LabelIssue.objects.filter(case_id=case_id)
        .values_list("score", "suggested_label_id", "suggested_p", "in_prune_set", "group", "views")
        .first()
    )
    if row is None:
        return None
    score, suggestion, p, flagged, group, views = row
    members = tuple(int(c) for c in group or [] if isinstance(c, int) and c != case_id)
    return ReviewFacts(
        score=float(score),
        suggestion_id=suggestion,
        suggestion_p=None if p is None else float(p),
        in_prune_set=bool(flagged),
        group=members,
        views=tuple(v for v in views or [] if isinstance(v, str)),
    )


def case_search_paths(*, project: Project) -> CaseSearchPaths:
    """The case search's way to the label issue and the champion's prediction of a case."""
    issue = LabelIssue._meta.get_field("case").related_query_name()
    prediction = Prediction._meta.get_field("case").related_query_name()
    champion_id = (
        ModelVersion.objects.filter(project_id=project.pk, status=ModelStatus.CHAMPION)
        .values_list("pk", flat=True)
        .first()
    )
    return CaseSearchPaths(
        issue_score=f"{issue}__score",
        issue_flagged=f"{issue}__in_prune_set",
        issue_project=f"{issue}__project",
        prediction=prediction,
        prediction_version=f"{prediction}__model_version",
        prediction_confidence="confidence",
        prediction_label="predicted_label",
        champion_id=champion_id,
    )


def export_sources(*, project: Project) -> ExportSources:
    """The export's tables for label issues and predictions, and the champion it reads."""
    version = (
        ModelVersion.objects.filter(project_id=project.pk, status=ModelStatus.CHAMPION)
        .values_list("pk", "number")
        .first()
    )
    return ExportSources(
        issue_table=LabelIssue._meta.db_table,
        prediction_table=Prediction._meta.db_table,
        champion_id=version[0] if version else None,
        champion_number=version[1] if version else None,
    )


def embedding_start(*, project: Project, reason: str) -> Job | None:
    from active_learning.services.embedding_jobs import embedding_start as start

    return start(project=project, reason=reason)


def register() -> None:
    from active_learning.services.queue_refill import queue_refill_stored
    from active_learning.services.retrain_requests import retrain_if_due, retrain_start

    hooks.register(
        retrain_start=retrain_start,
        embedding_start=embedding_start,
        retrain_if_due=retrain_if_due,
        champion=champion,
        last_decision=last_decision,
        case_facts=case_facts,
        review_facts=review_facts,
        queue_refill=queue_refill_stored,
        case_search_paths=case_search_paths,
        export_sources=export_sources,
    )
