"""Finding a case and reading its history.

Search takes an external id (exact), `key=value` (a metadata field's text equals value), or words
(PostgreSQL: full-text over `Case.text` with the English configuration, served by the GIN index
of migration 0003; SQLite: a case-insensitive substring). History is every annotation (superseded
ones too, with what was shown, and for reviewers' decisions their verdict and group pointers),
the predictions of each model version, the label issue, the audit events of the case, its
annotations and its resolution, and, for an excluded case, who excluded it and why.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from labeling.models import (
    Annotation,
    AnnotationSource,
    Case,
    LabelClass,
    Project,
    ResolvedLabel,
)
from labeling.selectors_queue import business_name, metadata_pairs
from labeling.services.resolution import DECIDING, RANK
from workbench.core.models import AuditEvent

SEARCH_LIMIT = 50
TEXT_SCAN_CAP = 5000  # full-text matches read unordered before the ordered query is used
_META_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")


# A reviewer's verdict (`Annotation.shown["verdict"]`) in words, for the history.
VERDICT_WORDS = {
    "confirm": "kept the given label",
    "accept": "accepted the suggestion",
    "relabel": "relabelled",
    "exclude": "excluded the case",
    "ambiguous": "marked ambiguous",
}


@dataclass
class SearchResult:
    query: str
    kind: str  # "", "external_id", "metadata", "text"
    cases: list[Case] = field(default_factory=list)
    excluded: set[int] = field(default_factory=set)  # ids of the cases out of the dataset


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


def _metadata_query(project: Project, query: str) -> list[Case] | None:
    key, _, value = query.partition("=")
    key, value = key.strip(), value.strip()
    if not _META_KEY.match(key) or "__" in key or not value:
        return None
    lookup = f"metadata__{key}"
    match = Q(**{lookup: value})
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, int | float | bool):  # `mcc=7995` finds the number 7995 too
        match |= Q(**{lookup: parsed})
    return list(
        Case.objects.filter(project=project).filter(match).order_by("external_id")[:SEARCH_LIMIT]
    )


def _text_query(project: Project, query: str) -> list[Case]:
    cases = Case.objects.filter(project=project)
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        # The same expression as the GIN index (config "english"), so the planner uses it.
        matched: QuerySet[Case] = cases.annotate(
            search=SearchVector("text", config="english")
        ).filter(search=SearchQuery(query, config="english", search_type="websearch"))
        # Not `ORDER BY id LIMIT 50` at once: the planner, which guesses that 0.5% of the rows
        # match a rare word, walks the primary key testing every row (2.7 s at 1M cases when
        # few match). The unordered, capped read uses the GIN index for rare words; only when
        # the cap is reached (many matches, found early on that walk) is the ordered one run.
        ids = list(matched.order_by().values_list("id", flat=True)[:TEXT_SCAN_CAP])
        if len(ids) < TEXT_SCAN_CAP:
            first = sorted(ids)[:SEARCH_LIMIT]
            found = Case.objects.in_bulk(first)
            return [found[pk] for pk in first]
    else:
        matched = cases.filter(text__icontains=query)
    return list(matched.order_by("id")[:SEARCH_LIMIT])


def _with_exclusions(result: SearchResult) -> SearchResult:
    ids = [c.pk for c in result.cases]
    excluded = ResolvedLabel.objects.filter(case_id__in=ids, excluded=True)
    result.excluded = set(excluded.values_list("case_id", flat=True)) if ids else set()
    return result


def case_search(*, project: Project, query: str) -> SearchResult:
    """Cases of the project matching `query`, at most SEARCH_LIMIT of them, with which of them
    are excluded from the dataset."""
    query = query.strip()
    if not query:
        return SearchResult(query, "")
    exact = list(Case.objects.filter(project=project, external_id=query)[:1])
    if exact:
        return _with_exclusions(SearchResult(query, "external_id", exact))
    if "=" in query:
        found = _metadata_query(project, query)
        if found is not None:
            return _with_exclusions(SearchResult(query, "metadata", found))
    return _with_exclusions(SearchResult(query, "text", _text_query(project, query)))


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
