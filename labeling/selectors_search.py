"""Finding a case and reading its history.

Search takes an external id (exact), `key=value` (a metadata field's text equals value), or words
(PostgreSQL: full-text over `Case.text` with the English configuration, served by the GIN index
of migration 0003; SQLite: a case-insensitive substring). History is every annotation (superseded
ones too, with what was shown), the predictions of each model version, the label issue and the
audit events of the case, its annotations and its resolution.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from labeling.models import Annotation, Case, Project, ResolvedLabel
from labeling.selectors_queue import metadata_pairs
from workbench.core.models import AuditEvent

SEARCH_LIMIT = 50
TEXT_SCAN_CAP = 5000  # full-text matches read unordered before the ordered query is used
_META_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")


@dataclass
class SearchResult:
    query: str
    kind: str  # "", "external_id", "metadata", "text"
    cases: list[Case] = field(default_factory=list)


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


def case_search(*, project: Project, query: str) -> SearchResult:
    """Cases of the project matching `query`, at most SEARCH_LIMIT of them."""
    query = query.strip()
    if not query:
        return SearchResult(query, "")
    exact = list(Case.objects.filter(project=project, external_id=query)[:1])
    if exact:
        return SearchResult(query, "external_id", exact)
    if "=" in query:
        found = _metadata_query(project, query)
        if found is not None:
            return SearchResult(query, "metadata", found)
    return SearchResult(query, "text", _text_query(project, query))


def case_history(*, case: Case) -> dict[str, Any]:
    """Everything that happened to the case, newest first in each part."""
    from labeling.hooks import model_side

    annotations = list(
        Annotation.objects.filter(case=case)
        .select_related("annotator", "label", "superseded_by")
        .order_by("-created_at", "-id")
    )
    facts = model_side().case_facts(case=case)
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
        "predictions": list(facts.predictions),
        "issue": facts.issue,
        "resolved": resolved,
        "events": events,
        "metadata": metadata_pairs(case.metadata),
        "business_name": str(case.metadata.get("business_name") or case.external_id)
        if isinstance(case.metadata, dict)
        else case.external_id,
    }


def case_link_key(case: Case) -> str:
    """The URL key of a case: its external id when it fits one path segment, else `pk:<id>`."""
    ext = case.external_id
    if ext and "/" not in ext and not ext.startswith("pk:") and ext not in (".", ".."):
        return ext
    return f"pk:{case.pk}"
