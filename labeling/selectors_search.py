"""Finding cases: words, filters and a sort, one page at a time.

`case_search` narrows a project's cases by words, filters and a sort, one page at a time (keyset
paging: a page ends at a `SearchCursor`, never an OFFSET). Words match an external id's prefix
(case-insensitive) or words of the business name (`metadata.business_name`) and the
description: PostgreSQL full-text with the English configuration, served by the GIN index of
migration 0011 over `search_vector()`; SQLite a case-insensitive substring per word. `key=value`
matches a metadata field instead. The label-issue score and the champion's prediction come from
the model side's rows, reached through `CaseSearchPaths` (labeling never imports them). A case's
history is in `labeling.selectors_history`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Exists, F, FilteredRelation, JSONField, OuterRef, Q, QuerySet, Value
from django.db.models.fields.json import KeyTextTransform, KeyTransform, KeyTransformExact
from django.db.models.functions import Coalesce, Left
from django.db.models.lookups import Exact
from django.utils import timezone

from labeling.contracts import CaseSearchPaths
from labeling.models import (
    Annotation,
    Case,
    LabelClass,
    Project,
    ResolutionSource,
    ResolvedLabel,
)
from labeling.selectors_history import case_link_key
from labeling.selectors_queue import (
    EXCLUDED,
    STATUS_TEXT,
    business_name,
    label_status,
    project_classes_by_id,
)
from workbench.errors import ApplicationError

PAGE_SIZE = 50
SNIPPET_CHARS = 160  # of a result's description (texts can be 100,000 characters)
# Words matching at most this many cases are read through the full-text index, then sorted;
# more, and the page walks the sort's own order testing each case. Where the two cost the same
# at 1M cases here: reading a match ~25 us (a heap page each), testing a case ~29 us (its
# to_tsvector), so 8,000 matches read ~ a 0.8% word's 6,250 cases walked (~200 ms either way).
TEXT_SCAN_CAP = 8000
_META_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")


class SearchSort(models.TextChoices):
    CHANGED = "changed", "Last change (newest)"
    ISSUE = "issue", "Issue score (highest)"
    CONFIDENCE = "confidence", "Model confidence (lowest)"


@dataclass(frozen=True)
class SearchFilters:
    """What a search asks for; every field narrows (all must hold). Dates are aware datetimes:
    `changed_from` inclusive, `changed_before` exclusive. `source` is a ResolutionSource value
    (`given` includes cases never resolved); `resolved_label_id` likewise falls back to the given
    label of a case never resolved."""

    query: str = ""
    given_label_id: int | None = None
    resolved_label_id: int | None = None
    source: str = ""
    doubtful: bool = False
    issue_flagged: bool = False
    score_min: float | None = None
    score_max: float | None = None
    split: str = ""
    labelled_by_id: int | None = None
    changed_from: datetime | None = None
    changed_before: datetime | None = None
    sort: str = SearchSort.CHANGED

    @property
    def narrowed(self) -> bool:
        """Whether anything besides the words and the sort narrows the search."""
        plain = SearchFilters(query=self.query, sort=self.sort)
        return any(getattr(self, f.name) != getattr(plain, f.name) for f in fields(self))

    @property
    def sort_label(self) -> str:
        return str(SearchSort(self.sort).label)

    @property
    def needs_model(self) -> bool:
        """Whether the search reads the model side's rows to filter or sort."""
        return (
            self.issue_flagged
            or self.score_min is not None
            or self.score_max is not None
            or self.sort != SearchSort.CHANGED
        )


class BadCursor(ValueError):
    """A page link's cursor that is not one this search wrote."""


@dataclass(frozen=True)
class SearchCursor:
    """Where a page ended: the sort, the segment of that sort (0: cases that have the sort's
    value, in its order; 1: the others, by last change), the last case's sort value and id."""

    sort: str
    segment: int
    key: float | datetime
    case_id: int

    def dumps(self) -> str:
        key = self.key.isoformat() if isinstance(self.key, datetime) else self.key
        raw = json.dumps([self.sort, self.segment, key, self.case_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def loads(cls, value: str) -> SearchCursor:
        """The cursor `dumps` wrote; BadCursor for anything else."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            sort, segment, key, case_id = json.loads(raw)
            if sort not in SearchSort.values or segment not in (0, 1):
                raise BadCursor(value)
            if not isinstance(case_id, int) or isinstance(case_id, bool) or case_id < 0:
                raise BadCursor(value)
            if _segment_key_is_time(sort, segment):
                parsed = datetime.fromisoformat(key)
                if parsed.tzinfo is None:
                    raise BadCursor(value)
                return cls(sort, segment, parsed, case_id)
            if isinstance(key, bool) or not isinstance(key, int | float):
                raise BadCursor(value)
            return cls(sort, segment, float(key), case_id)
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError) as exc:
            raise BadCursor(value) from exc


def _segment_key_is_time(sort: str, segment: int) -> bool:
    return sort == SearchSort.CHANGED or segment == 1


@dataclass
class SearchRow:
    """One result: the case, its current label and how far it is trusted (`label_status`, as
    the queue's similar cases show it), and what the models say of it."""

    case: Case
    key: str  # its URL key
    name: str
    snippet: str
    given: LabelClass | None
    resolved: LabelClass | None
    status: str
    predicted: LabelClass | None = None
    confidence: float | None = None
    issue_score: float | None = None
    issue_flagged: bool = False

    @property
    def status_text(self) -> str:
        return STATUS_TEXT.get(self.status, self.status)

    @property
    def excluded(self) -> bool:
        return self.status == EXCLUDED

    # Formatted here, not by template filters: a page formats 50 rows, and `floatformat` and
    # `date` cost more than the query (measured at 1M cases).
    @property
    def confidence_text(self) -> str:
        return "" if self.confidence is None else f"{self.confidence:.2f}"

    @property
    def issue_text(self) -> str:
        return "" if self.issue_score is None else f"{self.issue_score:.2f}"

    @property
    def changed_text(self) -> str:
        return timezone.localtime(self.case.changed_at).strftime("%Y-%m-%d %H:%M")


@dataclass
class SearchPage:
    """One page of results; `next_cursor` continues after its last row (None: no more)."""

    filters: SearchFilters
    kind: str  # "" (no words), "text" or "metadata"
    rows: list[SearchRow] = field(default_factory=list)
    next_cursor: SearchCursor | None = None
    first: bool = True
    model_columns: bool = False  # whether the model side's columns exist at all

    @property
    def next_token(self) -> str:
        """The next page's `after` value ("" on the last page)."""
        return self.next_cursor.dumps() if self.next_cursor is not None else ""


def search_vector() -> Any:
    """The full-text document of a case: business name and description, English (PostgreSQL).
    Migration 0011's GIN index is built over exactly this expression."""
    from django.contrib.postgres.search import SearchVector

    return SearchVector(KeyTextTransform("business_name", "metadata"), "text", config="english")


def _metadata_match(query: str) -> Q | None:
    """`key=value`: cases whose metadata holds `value` under the JSON key `key`, as text, or as
    the same number or boolean when `value` reads as one (`mcc=7995` finds 7995 and "7995").

    The key is only ever a JSON key: the lookups are built as expressions, never as lookup
    names from the input, so `isnull=x`, `regex=.*` or `has_key=url` name metadata fields
    like any other word. The key travels as a parameter of the statement."""
    key, _, value = query.partition("=")
    key, value = key.strip(), value.strip()
    if not _META_KEY.match(key) or not value:
        return None
    text = KeyTextTransform(key, "metadata")
    match = Q(Exact(text, value))
    typed = _typed_value(value)
    if typed is not None:
        field = KeyTransform(key, "metadata")
        match |= Q(KeyTransformExact(field, Value(typed, output_field=JSONField())))
    return match


def _typed_value(value: str) -> int | float | bool | None:
    """`value` as a JSON number or boolean when it is one that compares safely: finite, and an
    integer within 64 bits (JSON allows NaN, 1e999 and 5,000 digits; the databases do not)."""
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return None
    if isinstance(parsed, bool):
        return parsed
    if isinstance(parsed, int):
        return parsed if -(2**63) <= parsed < 2**63 else None
    if isinstance(parsed, float):
        return parsed if math.isfinite(parsed) else None
    return None


def _estimated_rows(qs: QuerySet[Any]) -> float:
    """The planner's estimate of the rows `qs` returns (PostgreSQL): for words, from the
    statistics ANALYZE keeps of the full-text index's most common lexemes."""
    plan = json.loads(qs.explain(format="json"))
    return float(plan[0]["Plan"]["Plan Rows"])


def _words(project: Project, qs: QuerySet[Case], query: str) -> tuple[QuerySet[Case], bool]:
    """Cases whose external id starts with `query` (any case) or whose name and description
    hold its words; and whether they are few (at most TEXT_SCAN_CAP, listed by id)."""
    prefix = Q(external_id__istartswith=query)
    if connection.vendor != "postgresql":
        words = Q()
        for word in query.split():
            words &= Q(text__icontains=word) | Q(metadata__business_name__icontains=word)
        return qs.filter(prefix | words), False
    from django.contrib.postgres.search import SearchQuery

    words = Q(document=SearchQuery(query, config="english", search_type="websearch"))
    cases = Case.objects.filter(project=project).order_by()
    by_words = cases.alias(document=search_vector()).filter(words)
    # Two ways to the first page. Few matches: read them all through the indexes (unordered;
    # the words and the id prefix each alone, since an OR of the two tests every match's text
    # again), then sort them. Many: walk the sort's own order testing each case, which finds a
    # page early. Never the sorted query for few: the planner, guessing that 0.5% of the cases
    # hold a word it has no statistics for, would walk testing every case (seconds at 1M).
    # The planner's estimate (exact enough for common words, which its statistics list) skips
    # the capped read where it could only cost (a common word's read alone took 60-450 ms).
    if _estimated_rows(by_words.values("pk")) <= TEXT_SCAN_CAP:
        by_prefix = cases.filter(prefix).values_list("pk", flat=True)
        capped = by_words.values_list("pk", flat=True)[: TEXT_SCAN_CAP + 1]
        ids = list(capped.union(by_prefix[: TEXT_SCAN_CAP + 1]))
        if len(ids) <= TEXT_SCAN_CAP:
            return qs.filter(pk__in=ids), True
    return qs.alias(document=search_vector()).filter(prefix | words), False


def _filtered(
    project: Project, filters: SearchFilters, paths: CaseSearchPaths | None
) -> tuple[QuerySet[Case], str, bool]:
    """The project's cases that pass `filters` (unordered), the kind of words search, and
    whether the words left few cases (listed by id)."""
    qs = Case.objects.filter(project=project)
    f = filters
    if f.given_label_id is not None:
        qs = qs.filter(given_label_id=f.given_label_id)
    if f.resolved_label_id is not None:
        qs = qs.filter(
            Q(resolved__label_id=f.resolved_label_id)
            | Q(resolved__isnull=True, given_label_id=f.resolved_label_id)
        )
    if f.source == ResolutionSource.GIVEN:
        qs = qs.filter(Q(resolved__isnull=True) | Q(resolved__source=f.source))
    elif f.source:
        qs = qs.filter(resolved__source=f.source)
    if f.doubtful:
        qs = qs.filter(resolved__doubtful=True)
    if f.split:
        qs = qs.filter(split=f.split)
    if f.labelled_by_id is not None:
        answers = Annotation.objects.filter(
            case_id=OuterRef("pk"),
            annotator_id=f.labelled_by_id,
            superseded_at__isnull=True,
            skipped=False,
        )
        qs = qs.filter(Exists(answers))
    if f.changed_from is not None:
        qs = qs.filter(changed_at__gte=f.changed_from)
    if f.changed_before is not None:
        qs = qs.filter(changed_at__lt=f.changed_before)
    if paths is not None:
        issue: dict[str, Any] = {}
        if f.issue_flagged:
            issue[paths.issue_flagged] = True
        if f.score_min is not None:
            issue[f"{paths.issue_score}__gte"] = f.score_min
        if f.score_max is not None:
            issue[f"{paths.issue_score}__lte"] = f.score_max
        if issue:
            qs = qs.filter(**issue, **{paths.issue_project: project})
    kind, few = "", False
    if f.query:
        metadata = _metadata_match(f.query) if "=" in f.query else None
        if metadata is not None:
            qs, kind = qs.filter(metadata), "metadata"
        else:
            (qs, few), kind = _words(project, qs, f.query), "text"
    return qs, kind, few


@dataclass(frozen=True)
class _Segment:
    """A run of the sort: the cases it holds, the path of their sort value, its direction."""

    where: Q
    key: str
    descending: bool


_BY_CHANGE = _Segment(Q(), "changed_at", True)


def _segments(
    sort: str, project: Project, paths: CaseSearchPaths | None
) -> tuple[list[_Segment], dict[str, Any]]:
    """The sort's segments, and the aliases they read (the champion's prediction). A sort by a
    model's value without that value (no model side, no champion) lists every case in its
    second segment, by last change."""
    if sort == SearchSort.CHANGED:
        return [_BY_CHANGE], {}
    nothing = _Segment(Q(pk__in=[]), "changed_at", True)
    if paths is None:
        return [nothing, _BY_CHANGE], {}
    if sort == SearchSort.ISSUE:
        scored = Q(**{f"{paths.issue_score}__isnull": False, paths.issue_project: project})
        unscored = _Segment(Q(**{f"{paths.issue_score}__isnull": True}), "changed_at", True)
        return [_Segment(scored, paths.issue_score, True), unscored], {}
    if sort == SearchSort.CONFIDENCE and paths.champion_id is not None:
        champion = FilteredRelation(
            paths.prediction, condition=Q(**{paths.prediction_version: paths.champion_id})
        )
        confidence = f"champion__{paths.prediction_confidence}"
        predicted = _Segment(Q(**{f"{confidence}__isnull": False}), confidence, False)
        unpredicted = _Segment(Q(champion__isnull=True), "changed_at", True)
        return [predicted, unpredicted], {"champion": champion}
    return [nothing, _BY_CHANGE], {}


def _after(segment: _Segment, cursor: SearchCursor) -> Q:
    """Rows after the cursor in the segment's order. The redundant bound on the key alone lets
    the index range start at the cursor instead of filtering everything before it."""
    key, pk = segment.key, cursor.case_id
    if segment.descending:
        return Q(**{f"{key}__lte": cursor.key}) & (Q(**{f"{key}__lt": cursor.key}) | Q(pk__lt=pk))
    return Q(**{f"{key}__gte": cursor.key}) & (Q(**{f"{key}__gt": cursor.key}) | Q(pk__gt=pk))


def _page_keys(
    qs: QuerySet[Case],
    segments: list[_Segment],
    cursor: SearchCursor | None,
    limit: int,
    *,
    few: bool = False,
) -> list[tuple[int, int, Any]]:
    """Up to `limit` (segment, case id, sort value) in order, after `cursor`. `few`: the cases
    are a short list of ids, to be read and sorted; ordered by the bare key, the planner would
    rather walk the key's index for them, which is slow when they sit at its far end (a prefix
    of old ids: 82 ms at 1M, against 3 ms)."""
    out: list[tuple[int, int, Any]] = []
    start = cursor.segment if cursor is not None else 0
    for index in range(start, len(segments)):
        segment = segments[index]
        part = qs.filter(segment.where)
        if cursor is not None and index == cursor.segment:
            part = part.filter(_after(segment, cursor))
        by: Any = Coalesce(F(segment.key), F(segment.key)) if few else F(segment.key)
        order = [by.desc(), F("pk").desc()] if segment.descending else [by.asc(), F("pk").asc()]
        rows = part.order_by(*order).values_list("pk", segment.key)[: limit - len(out)]
        out.extend((index, pk, key) for pk, key in rows)
        if len(out) >= limit:
            break
    return out


def _snippet(text: str) -> str:
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"


# What a result row reads of its case and resolution (the text only as its snippet).
_ROW_FIELDS = (
    "external_id",
    "metadata",
    "given_label_id",
    "given_label_source",
    "split",
    "changed_at",
    "resolved__label_id",
    "resolved__source",
    "resolved__doubtful",
    "resolved__excluded",
)


def _rows(
    ids: list[int], paths: CaseSearchPaths | None, classes: dict[int, LabelClass]
) -> list[SearchRow]:
    """The results' rows for `ids`, in that order, in one query."""
    qs = (
        Case.objects.filter(pk__in=ids)
        .select_related("resolved")
        .annotate(snippet=Left("text", SNIPPET_CHARS + 1))
        .only(*_ROW_FIELDS)
    )
    if paths is not None:
        qs = qs.annotate(issue_score=F(paths.issue_score), issue_flagged=F(paths.issue_flagged))
        if paths.champion_id is not None:
            champion = FilteredRelation(
                paths.prediction, condition=Q(**{paths.prediction_version: paths.champion_id})
            )
            qs = qs.alias(champion=champion).annotate(
                predicted_id=F(f"champion__{paths.prediction_label}"),
                confidence=F(f"champion__{paths.prediction_confidence}"),
            )
    found = {c.pk: c for c in qs}
    rows = []
    for pk in ids:
        case = found.get(pk)
        if case is None:
            continue
        resolved: ResolvedLabel | None = getattr(case, "resolved", None)
        current = resolved.label_id if resolved is not None else case.given_label_id
        predicted = getattr(case, "predicted_id", None)
        rows.append(
            SearchRow(
                case=case,
                key=case_link_key(case),
                name=business_name(case),
                snippet=_snippet(case.snippet),
                given=classes.get(case.given_label_id or 0),
                resolved=classes.get(current or 0),
                status=label_status(resolved),
                predicted=classes.get(predicted or 0),
                confidence=getattr(case, "confidence", None),
                issue_score=getattr(case, "issue_score", None),
                issue_flagged=bool(getattr(case, "issue_flagged", False)),
            )
        )
    return rows


ERR_NO_MODEL_SIDE = "Label issues and model confidence are not available in this installation."


@dataclass(frozen=True)
class SearchChoices:
    """What the search form offers: the project's classes and the people who may have
    labelled its cases (members, by username)."""

    classes: list[LabelClass]
    people: list[Any]


def case_search_choices(*, project: Project, people: bool = True) -> SearchChoices:
    """The form's choices; without `people` (a results swap that names nobody) no member is
    read."""
    from django.contrib.auth import get_user_model

    members = get_user_model().objects.filter(memberships__project=project)
    return SearchChoices(
        classes=list(project_classes_by_id(project=project).values()),
        people=list(members.order_by("username")) if people else [],
    )


def case_search(
    *,
    project: Project,
    filters: SearchFilters,
    after: SearchCursor | None = None,
    page_size: int = PAGE_SIZE,
    classes: dict[int, LabelClass] | None = None,
) -> SearchPage:
    """One page of the project's cases that pass `filters`, in the filters' sort, continuing
    after `after` (a cursor of the same sort; BadCursor otherwise). `classes`: the project's
    classes by id, when the caller has them already.
    ApplicationError when the filters need the model side and there is none."""
    from labeling.hooks import model_side

    if after is not None and after.sort != filters.sort:
        raise BadCursor(after.dumps())
    paths = model_side().case_search_paths(project=project)
    if paths is None and filters.needs_model:
        raise ApplicationError(ERR_NO_MODEL_SIDE)
    segments, aliases = _segments(filters.sort, project, paths)
    if after is not None and after.segment >= len(segments):
        raise BadCursor(after.dumps())
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A first page reads a few hundred rows at most: starting parallel workers costs
            # more (50 ms here) than any plan they would share.
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('max_parallel_workers_per_gather', '0', true)")
        qs, kind, few = _filtered(project, filters, paths)
        if aliases:
            qs = qs.alias(**aliases)
        keys = _page_keys(qs, segments, after, page_size + 1, few=few)
        classes = classes if classes is not None else project_classes_by_id(project=project)
        rows = _rows([pk for _, pk, _ in keys[:page_size]], paths, classes)
    page = SearchPage(filters=filters, kind=kind, first=after is None, rows=rows)
    page.model_columns = paths is not None
    if len(keys) > page_size:
        segment, pk, key = keys[page_size - 1]
        page.next_cursor = SearchCursor(filters.sort, segment, key, pk)
    return page


def case_by_external_id(*, project: Project, query: str) -> Case | None:
    """The case whose external id is `query`: exactly, else ignoring case when only one does."""
    query = query.strip()
    if not query:
        return None
    # Ids are unique as written, so the exact one, if any, is among those equal in any case.
    found = list(Case.objects.filter(project=project, external_id__iexact=query)[:20])
    exact = [c for c in found if c.external_id == query]
    return exact[0] if exact else found[0] if len(found) == 1 else None
