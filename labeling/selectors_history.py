"""A case's history: every annotation (superseded ones too, with what was shown, and for
reviewers' decisions their verdict and group pointers), the predictions of each model version,
the label issue, the audit events of the case, its annotations and its resolution, and, for an
excluded case, who excluded it and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q

from labeling.contracts import detection_view_words
from labeling.models import Annotation, AnnotationSource, Case, LabelClass, ResolvedLabel
from labeling.selectors_queue import business_name, metadata_pairs
from labeling.services.resolution import DECIDING, RANK
from workbench.core.models import AuditEvent

# A reviewer's verdict (`Annotation.shown["verdict"]`) in words, for the history.
VERDICT_WORDS = {
    "confirm": "kept the given label",
    "accept": "accepted the suggestion",
    "relabel": "relabelled",
    "exclude": "excluded the case",
    "ambiguous": "marked ambiguous",
}


@dataclass
class HistoryRow:
    """One annotation of the case's history; for a decision, its verdict in words, and for a
    copy of a group decision, the case the decision was taken on (`decision_key`: its URL key)."""

    annotation: Annotation
    verdict: str = ""
    decision_case: Case | None = None
    decision_key: str = ""
    members: int = 0
    suggestion: str = ""  # the class the card suggested, by name ("" when none or blind)


@dataclass
class Exclusion:
    """Who took the case out of the dataset, when and why (from the deciding annotation)."""

    by: str
    reason: str
    at: datetime | None
    decision_case: Case | None = None
    decision_key: str = ""


def _deciding(case: Case, annotations: list[Annotation]) -> Annotation | None:
    """The decision the case's resolution rests on: the latest current one of the highest
    source (as `labeling.services.resolution` picks it), or None."""
    current = [
        a
        for a in annotations
        if a.superseded_at is None
        and not a.skipped
        and a.content_hash == case.content_hash
        and a.source in DECIDING
    ]
    if not current:
        return None
    return max(current, key=lambda a: (RANK[DECIDING[AnnotationSource(a.source)]], a.pk))


def _history_rows(annotations: list[Annotation], names: dict[int, str]) -> list[HistoryRow]:
    rows = []
    for a in annotations:
        shown = a.shown if isinstance(a.shown, dict) else {}
        suggested = shown.get("suggestion_id")
        suggestion = names.get(suggested, f"class #{suggested}") if suggested else ""
        source = a.group_decision if a.group_decision_id else None
        verdict = str(shown.get("verdict") or "")
        if source is not None:
            verdict = str((source.shown or {}).get("verdict") or "")
        rows.append(
            HistoryRow(
                annotation=a,
                verdict=VERDICT_WORDS.get(verdict, verdict),
                decision_case=source.case if source is not None else None,
                decision_key=case_link_key(source.case) if source is not None else "",
                members=len(shown.get("group") or []),
                suggestion=suggestion,
            )
        )
    return rows


def _exclusion(
    case: Case, resolved: ResolvedLabel | None, annotations: list[Annotation]
) -> Exclusion | None:
    if resolved is None or not resolved.excluded:
        return None
    decision = _deciding(case, annotations)
    if decision is None or not decision.exclude:
        return Exclusion(by="", reason="", at=resolved.updated_at)
    source = decision.group_decision if decision.group_decision_id else None
    return Exclusion(
        by=decision.annotator.get_username(),
        reason=decision.exclude_reason,
        at=decision.created_at,
        decision_case=source.case if source is not None else None,
        decision_key=case_link_key(source.case) if source is not None else "",
    )


def case_history(*, case: Case) -> dict[str, Any]:
    """Everything that happened to the case, newest first in each part."""
    from labeling.hooks import model_side

    annotations = list(
        Annotation.objects.filter(case=case)
        .select_related("annotator", "label", "superseded_by", "group_decision__case")
        .order_by("-created_at", "-id")
    )
    facts = model_side().case_facts(case=case)
    names = {c.pk: str(c) for c in LabelClass.objects.filter(project_id=case.project_id)}
    resolved = ResolvedLabel.objects.filter(case=case).select_related("label").first()
    objects = Q(object_type="labeling.case", object_id=str(case.pk)) | Q(
        object_type="labeling.annotation", object_id__in=[str(a.pk) for a in annotations]
    )
    if resolved is not None:
        objects |= Q(object_type="labeling.resolvedlabel", object_id=str(resolved.pk))
    events = list(
        AuditEvent.objects.filter(objects).select_related("actor").order_by("-created_at")[:200]
    )
    return {
        "annotations": annotations,
        "history": _history_rows(annotations, names),
        "exclusion": _exclusion(case, resolved, annotations),
        "predictions": list(facts.predictions),
        "issue": facts.issue,
        "issue_views": detection_view_words(getattr(facts.issue, "views", None)),
        "resolved": resolved,
        "events": events,
        "metadata": metadata_pairs(case.metadata),
        "business_name": business_name(case),
    }


def case_link_key(case: Case) -> str:
    """The URL key of a case: its external id when it fits one path segment, else `pk:<id>`."""
    ext = case.external_id
    if ext and "/" not in ext and not ext.startswith("pk:") and ext not in (".", ".."):
        return ext
    return f"pk:{case.pk}"
