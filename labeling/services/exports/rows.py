"""Reading the export's rows: one snapshot, keyset pages of cases, their annotations per page.

`read_snapshot()` opens the transaction every read of one export shares (REPEATABLE READ, READ
ONLY on PostgreSQL; a deferred read transaction on SQLite, which in WAL mode neither blocks nor
waits for writers). `export_pages` yields `Page`s of at most `page_size` cases in id order, each
row a tuple in `schema.CASE_NAMES` order with class names, never ids; with provenance, each
case's annotations as tuples in `schema.ANNOTATION_NAMES` order. Memory: one page at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from labeling.contracts import ExportSources
from labeling.models import Annotation, Case, LabelClass, ResolutionSource, ResolvedLabel

PAGE_SIZE = 5000
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


@dataclass
class Plan:
    """The statements of one export, built once."""

    where: str
    params: list[Any]
    joins: str
    select: str
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


def export_plan(*, project_id: int, options: ExportOptions, sources: ExportSources | None) -> Plan:
    case, resolved = _table(Case), _table(ResolvedLabel)
    joins = f"FROM {case} c LEFT JOIN {resolved} r ON r.case_id = c.id"
    params: list[Any] = []
    model_select = "NULL, NULL, NULL, NULL"
    if sources is not None:
        issue = connection.ops.quote_name(sources.issue_table)
        joins += f" LEFT JOIN {issue} li ON li.case_id = c.id"
        if sources.champion_id is not None:
            prediction = connection.ops.quote_name(sources.prediction_table)
            joins += f" LEFT JOIN {prediction} p ON p.case_id = c.id AND p.model_version_id = %s"
            params.append(sources.champion_id)
            model_select = "li.score, li.suggested_label_id, p.predicted_label_id, p.confidence"
        else:
            model_select = "li.score, li.suggested_label_id, NULL, NULL"
    select = (
        "c.id, c.external_id, c.text, "
        f"{_as_json_text('c.metadata')}, c.split, c.given_label_id, c.given_label_source, "
        "r.source, r.label_id, r.confidence, r.agreement, r.doubtful, r.excluded, "
        f"c.content_hash, c.changed_at, {model_select}"
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
        where=" AND ".join(where),
        params=params + where_params,
        joins=joins,
        select=select,
    )


def export_count(plan: Plan) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) {plan.joins} WHERE {plan.where}", plan.params)
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


def _annotation_rows(
    *, project_id: int, low: int, high: int, provenance: bool
) -> Iterator[tuple[Any, ...]]:
    """Annotations of the project's cases with low < id <= high, by case then id: current ones
    only (for the counts and flags), or every one with its details for provenance."""
    annotation, case = _table(Annotation), _table(Case)
    if provenance:
        user = _table(get_user_model())
        columns = (
            "a.case_id, a.id, a.label_id, a.skipped, a.exclude, a.exclude_reason, "
            "a.content_hash, a.superseded_at, u.username, a.source, a.noise_flag, "
            f"a.ambiguous, a.comment, a.duration_ms, {_as_json_text('a.shown')}, a.created_at"
        )
        joins = f"JOIN {user} u ON u.id = a.annotator_id"
        current = ""
    else:
        columns = (
            "a.case_id, a.id, a.label_id, a.skipped, a.exclude, a.exclude_reason, "
            "a.content_hash, a.superseded_at"
        )
        joins = ""
        current = "AND a.superseded_at IS NULL"
    statement = (
        f"SELECT {columns} FROM {annotation} a JOIN {case} c ON c.id = a.case_id {joins} "
        f"WHERE a.case_id > %s AND a.case_id <= %s AND c.project_id = %s {current} "
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
    page_size = page_size or PAGE_SIZE
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(statement, [*plan.params, last, page_size])
            raw = cursor.fetchall()
        if not raw:
            return
        low, last = last, raw[-1][0]
        # Per case: [analyst labels, stale, excluded reason, annotations]
        facts: dict[int, list[Any]] = {row[0]: [0, False, "", []] for row in raw}
        hashes = {row[0]: row[13] for row in raw}
        for a in _annotation_rows(project_id=project_id, low=low, high=last, provenance=provenance):
            fact = facts.get(a[0])
            if fact is None:
                continue  # a case the filters leave out
            current = a[7] is None
            stale = a[6] != hashes[a[0]]
            if current:
                if stale:
                    fact[1] = True
                elif a[2] is not None and not a[3]:
                    fact[0] += 1
                if a[4]:
                    fact[2] = a[5] or ""
            if provenance:
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
                        _ts(a[15]),
                    )
                )
        cases = []
        for row in raw:
            fact = facts[row[0]]
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
                    name(row[17]) if row[17] is not None else None,
                    row[18],
                    champion_number if row[18] is not None else None,
                    fact[0],
                    _ts(row[14]),
                )
            )
        annotations = [facts[row[0]][3] for row in raw] if provenance else None
        yield Page(cases=cases, annotations=annotations, last_id=last)
        if len(raw) < page_size:
            return
