"""Reading the export's rows: one snapshot, keyset pages of cases, their annotations per page.

`read_snapshot()` opens the transaction every read of one export shares (REPEATABLE READ, READ
ONLY on PostgreSQL; a deferred read transaction on SQLite, which in WAL mode neither blocks nor
waits for writers). `export_pages` yields `Page`s of at most `page_size` cases in id order, each
row a tuple in `schema.CASE_NAMES` order with class names, never ids; with provenance, each
case's annotations as tuples in `schema.ANNOTATION_NAMES` order. Memory: one page at a time.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from labeling.contracts import ExportSources
from labeling.models import Annotation, Case, LabelClass, ResolutionSource, ResolvedLabel

PAGE_SIZE = 5000
# With provenance, pages shrink so that one holds about this many annotations (memory is per
# page: a project with many annotations per case gets pages of fewer cases).
PAGE_ANNOTATIONS = 20_000
MIN_PAGE_SIZE = 50
CASES_ALL = "all"
CASES_LABELLED = "labelled"  # the final label came from people (any source but `given`)
CASES_CHANGED = "changed"  # the final label differs from the given label
CASES_EXCLUDED = "excluded"  # only the cases a reviewer excluded
CASE_CHOICES = (CASES_ALL, CASES_LABELLED, CASES_CHANGED, CASES_EXCLUDED)
SPLIT_ALL = "all"
SPLIT_CHOICES = (SPLIT_ALL, "pool", "eval")


@dataclass(frozen=True)
class ExportOptions:
    """Which cases and what: `cases` one of CASE_CHOICES, `split` one of SPLIT_CHOICES;
    excluded cases only with `include_excluded` (or `cases="excluded"`)."""

    cases: str = CASES_ALL
    split: str = SPLIT_ALL
    include_excluded: bool = False
    provenance: bool = False

    def __post_init__(self) -> None:
        if self.cases not in CASE_CHOICES:
            raise ValueError(f"cases must be one of {', '.join(CASE_CHOICES)}")
        if self.split not in SPLIT_CHOICES:
            raise ValueError(f"split must be one of {', '.join(SPLIT_CHOICES)}")

    def to_json(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "split": self.split,
            "include_excluded": self.include_excluded,
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportOptions:
        return cls(
            cases=str(data.get("cases", CASES_ALL)),
            split=str(data.get("split", SPLIT_ALL)),
            include_excluded=bool(data.get("include_excluded")),
            provenance=bool(data.get("provenance")),
        )


@dataclass
class Page:
    cases: list[tuple[Any, ...]]
    annotations: list[list[tuple[Any, ...]]] | None = None
    last_id: int = 0


# In a plan's parameters: the id the page starts after (0 for the count).
AFTER = object()


@dataclass
class Plan:
    """The statements of one export, built once."""

    where: str
    params: list[Any]
    joins: str
    select: str
    time_format: str = "datetime"

    def bind(self, after: int) -> list[Any]:
        return [after if p is AFTER else p for p in self.params]

    classes: dict[int, str] = field(default_factory=dict)


@contextlib.contextmanager
def read_snapshot() -> Iterator[None]:
    """Every read inside sees one committed state of the database.

    Inside a caller's transaction (a test's), reads share that one instead.
    """
    if connection.in_atomic_block:
        yield
        return
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
        return
    if connection.vendor == "sqlite":
        # Not atomic(): the embedded default begins IMMEDIATE, which would hold the write lock
        # (every analyst's label) for the whole export. A deferred read takes its snapshot at
        # the first read.
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("COMMIT")
        return
    with transaction.atomic():
        yield


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _as_json_text(column: str) -> str:
    return f"{column}::text" if connection.vendor == "postgresql" else column


# How `changed_at` leaves the database: `iso` text (CSV, JSONL), `micros` since the epoch
# (Parquet), or a datetime. PostgreSQL formats it (parsing a datetime per row in Python cost
# a tenth of the export); other databases give datetimes, converted by the writers.
TIME_ISO, TIME_MICROS, TIME_DATETIME = "iso", "micros", "datetime"


def _time(column: str, time_format: str) -> str:
    if connection.vendor != "postgresql":
        return column
    if time_format == TIME_ISO:
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
    if time_format == TIME_MICROS:
        return f"(extract(epoch FROM {column}) * 1000000)::bigint"
    return column


def _as_given(value: Any) -> Any:
    """A time as the database gave it: preformatted (text, epoch micros) or a datetime."""
    return value if type(value) is str or type(value) is int else _ts(value)


def export_plan(
    *,
    project_id: int,
    options: ExportOptions,
    sources: ExportSources | None,
    time_format: str = TIME_DATETIME,
) -> Plan:
    case, resolved = _table(Case), _table(ResolvedLabel)
    params: list[Any] = []
    # Every joined table is bounded below by the page's start too: without it PostgreSQL's
    # merge joins read each joined index from its first row on every page (quadratic: 1M cases
    # took 60 s instead of a few).
    joins = f"FROM {case} c LEFT JOIN {resolved} r ON r.case_id = c.id AND r.case_id > %s"
    params.append(AFTER)
    model_select = "NULL, NULL, NULL, NULL, NULL, NULL, NULL"
    if sources is not None:
        issue = connection.ops.quote_name(sources.issue_table)
        joins += f" LEFT JOIN {issue} li ON li.case_id = c.id AND li.case_id > %s"
        params.append(AFTER)
        issue_select = (
            "li.score, li.suggested_label_id, li.suggested_p, li.in_prune_set, "
            f"{_as_json_text('li.views')}"
        )
        if sources.champion_id is not None:
            prediction = connection.ops.quote_name(sources.prediction_table)
            joins += (
                f" LEFT JOIN {prediction} p ON p.case_id = c.id AND p.model_version_id = %s"
                " AND p.case_id > %s"
            )
            params += [sources.champion_id, AFTER]
            model_select = f"{issue_select}, p.predicted_label_id, p.confidence"
        else:
            model_select = f"{issue_select}, NULL, NULL"
    select = (
        "c.id, c.external_id, c.text, "
        f"{_as_json_text('c.metadata')}, c.split, c.given_label_id, c.given_label_source, "
        "r.source, r.label_id, r.confidence, r.agreement, r.doubtful, r.excluded, "
        f"c.content_hash, {_time('c.changed_at', time_format)}, {model_select}"
    )
    where = ["c.project_id = %s"]
    where_params: list[Any] = [project_id]
    if options.split != SPLIT_ALL:
        where.append("c.split = %s")
        where_params.append(options.split)
    if options.cases == CASES_LABELLED:
        where.append("r.source IS NOT NULL AND r.source <> %s")
        where_params.append(str(ResolutionSource.GIVEN))
    elif options.cases == CASES_CHANGED:
        where.append(
            "r.source IS NOT NULL AND COALESCE(r.label_id, -1) <> COALESCE(c.given_label_id, -1)"
        )
    if options.cases == CASES_EXCLUDED:
        where.append("r.excluded")
    elif not options.include_excluded:
        where.append("(r.excluded IS NULL OR NOT r.excluded)")
    return Plan(
        time_format=time_format,
        where=" AND ".join(where),
        params=params + where_params,
        joins=joins,
        select=select,
    )


def export_count(plan: Plan) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) {plan.joins} WHERE {plan.where}", plan.bind(0))
        return int(cursor.fetchone()[0])


def _ts(value: Any) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite's raw reads give text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _annotation_counts(*, project_id: int, low: int, high: int) -> list[tuple[Any, ...]]:
    """Per case with low < id <= high that has current annotations: (case id, current non-stale
    labels, any stale, an exclusion's reason), aggregated by the database (one row per case)."""
    annotation, case = _table(Annotation), _table(Case)
    statement = (
        "SELECT a.case_id, "
        "SUM(CASE WHEN a.content_hash = c.content_hash AND a.label_id IS NOT NULL "
        "AND NOT a.skipped THEN 1 ELSE 0 END), "
        "MAX(CASE WHEN a.content_hash <> c.content_hash THEN 1 ELSE 0 END), "
        "MAX(CASE WHEN a.exclude THEN a.exclude_reason END) "
        f"FROM {annotation} a JOIN {case} c ON c.id = a.case_id "
        "WHERE a.case_id > %s AND a.case_id <= %s AND c.project_id = %s "
        "AND a.superseded_at IS NULL GROUP BY a.case_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [low, high, project_id])
        return cursor.fetchall()


def _annotation_rows(
    *, project_id: int, low: int, high: int, time_format: str
) -> Iterator[tuple[Any, ...]]:
    """Every annotation (superseded ones too) of the project's cases with low < id <= high,
    by case then id, with the details provenance exports."""
    annotation, case = _table(Annotation), _table(Case)
    user = _table(get_user_model())
    columns = (
        "a.case_id, a.id, a.label_id, a.skipped, a.exclude, a.exclude_reason, "
        "a.content_hash, a.superseded_at IS NOT NULL, u.username, a.source, a.noise_flag, "
        f"a.ambiguous, a.comment, a.duration_ms, {_as_json_text('a.shown')}, "
        f"{_time('a.created_at', time_format)}"
    )
    statement = (
        f"SELECT {columns} FROM {annotation} a JOIN {case} c ON c.id = a.case_id "
        f"JOIN {user} u ON u.id = a.annotator_id "
        "WHERE a.case_id > %s AND a.case_id <= %s AND c.project_id = %s "
        "ORDER BY a.case_id, a.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [low, high, project_id])
        while rows := cursor.fetchmany(2000):
            yield from rows


def export_pages(
    *,
    project_id: int,
    plan: Plan,
    provenance: bool,
    champion_number: int | None = None,
    page_size: int | None = None,
) -> Iterator[Page]:
    """The export's rows, a page at a time, in case id order (keyset: `c.id > last`).

    Call inside `read_snapshot()` so that every page reads the same state.
    """
    classes = {
        pk: name
        for pk, name in LabelClass.objects.filter(project_id=project_id).values_list("pk", "name")
    }
    name = classes.get
    statement = (
        f"SELECT {plan.select} {plan.joins} WHERE {plan.where} AND c.id > %s ORDER BY c.id LIMIT %s"
    )
    given_source = str(ResolutionSource.GIVEN)
    largest = page_size or PAGE_SIZE
    page_size = largest
    if provenance:
        page_size = _page_for(largest, *_annotation_density(project_id))
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(statement, [*plan.bind(last), last, page_size])
            raw = cursor.fetchall()
        if not raw:
            return
        low, last = last, raw[-1][0]
        # Per case with annotations: [analyst labels, stale, excluded reason, annotations]
        facts: dict[int, list[Any]] = {}
        if not provenance:
            for case_id, labels, stale, reason in _annotation_counts(
                project_id=project_id, low=low, high=last
            ):
                facts[case_id] = [int(labels or 0), bool(stale), reason or "", []]
        hashes = {row[0]: row[13] for row in raw} if provenance else {}
        rows = (
            _annotation_rows(
                project_id=project_id, low=low, high=last, time_format=plan.time_format
            )
            if provenance
            else ()
        )
        for a in rows:
            if a[0] not in hashes:
                continue  # a case the filters leave out
            fact = facts.get(a[0])
            if fact is None:
                fact = facts[a[0]] = [0, False, "", []]
            current = not a[7]
            stale = a[6] != hashes[a[0]]
            if current:
                if stale:
                    fact[1] = True
                elif a[2] is not None and not a[3]:
                    fact[0] += 1
                if a[4]:
                    fact[2] = a[5] or ""
            fact[3].append(
                (
                    a[1],
                    a[8],
                    name(a[2]) if a[2] is not None else None,
                    a[9],
                    bool(a[3]),
                    bool(a[10]),
                    bool(a[11]),
                    bool(a[4]),
                    a[5],
                    a[12],
                    a[13],
                    a[14],
                    stale,
                    not current,
                    _as_given(a[15]),
                )
            )
        cases = []
        for row in raw:
            fact = facts.get(row[0], _NO_FACTS)
            given = name(row[5]) if row[5] is not None else None
            if row[7] is None:  # never resolved: the given label stands
                final, source = given, given_source if given is not None else None
                confidence = agreement = None
                doubtful = excluded = False
            else:
                final = name(row[8]) if row[8] is not None else None
                source, confidence, agreement = row[7], row[9], row[10]
                doubtful, excluded = bool(row[11]), bool(row[12])
            cases.append(
                (
                    row[1],
                    row[2],
                    row[3],
                    row[4],
                    given,
                    row[6],
                    final,
                    source,
                    confidence,
                    agreement,
                    doubtful,
                    excluded,
                    fact[2] if excluded else "",
                    fact[1],
                    row[15],
                    name(row[16]) if row[16] is not None else None,
                    name(row[20]) if row[20] is not None else None,
                    row[21],
                    champion_number if row[21] is not None else None,
                    fact[0],
                    _as_given(row[14]),
                    None if row[18] is None else bool(row[18]),
                    row[17],
                    _views_text(row[19]) if row[15] is not None else None,
                )
            )
        annotations = [facts.get(row[0], _NO_FACTS)[3] for row in raw] if provenance else None
        yield Page(cases=cases, annotations=annotations, last_id=last)
        if len(raw) < page_size:
            return
        if annotations is not None:
            page_size = _page_for(largest, sum(map(len, annotations)), len(raw))


_NO_FACTS: list[Any] = [0, False, "", ()]


def _views_text(value: Any) -> str:
    """A label issue's `views` (JSON text, or a list: view names; NULL or `[]` when none) as
    the names joined by commas."""
    if value is None:
        return ""
    names = json.loads(value) if isinstance(value, str) else value
    return ",".join(str(v) for v in names or ())


def _annotation_density(project_id: int) -> tuple[int, int]:
    """(annotations, cases) of the project, for the first page's size."""
    annotation, case = _table(Annotation), _table(Case)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM {annotation} a JOIN {case} c ON c.id = a.case_id "
            f"WHERE c.project_id = %s), (SELECT count(*) FROM {case} WHERE project_id = %s)",
            [project_id, project_id],
        )
        annotations, cases = cursor.fetchone()
    return int(annotations), int(cases)


def _page_for(largest: int, annotations: int, cases: int) -> int:
    """Cases per page so that a page holds about PAGE_ANNOTATIONS annotations."""
    if annotations <= 0 or cases <= 0:
        return largest
    return max(MIN_PAGE_SIZE, min(largest, int(PAGE_ANNOTATIONS * cases / annotations)))
