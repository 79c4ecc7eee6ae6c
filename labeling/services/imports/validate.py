"""The validation pass: every record judged, ids checked for duplicates and against the database.

`normalize` turns one raw record into a `CaseRow` (or problems); `validate_records` streams a
whole reader, holding only the set of ids seen, and fills the report. Nothing here writes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import connection

from labeling.models import SHORTCUT_KEY_ORDER, Case, Project
from labeling.services.imports.readers import Record
from labeling.services.imports.report import (
    ERR_DUPLICATE_ID,
    ERR_EXISTING_ID,
    ERR_ID_TOO_LONG,
    ERR_KEY_NUL,
    ERR_KEY_UNDECODABLE,
    ERR_LABEL_SOURCE_TOO_LONG,
    ERR_LABEL_TOO_LONG,
    ERR_METADATA_JSON,
    ERR_METADATA_TOO_DEEP,
    ERR_METADATA_TOO_LONG,
    ERR_MISSING_COLUMN,
    ERR_MISSING_ID,
    ERR_MISSING_KEY,
    ERR_MISSING_TEXT,
    ERR_NO_SHORTCUT,
    ERR_NOT_SCALAR,
    ERR_NUL,
    ERR_TEXT_TOO_LONG,
    ERR_TOO_MANY_KEYS,
    ERR_UNDECODABLE,
    ERR_UNKNOWN_LABEL,
    MAX_COLUMNS,
    MAX_ID_CHARS,
    MAX_LABEL_CHARS,
    MAX_LABEL_SOURCE_CHARS,
    MAX_METADATA_CHARS,
    MAX_METADATA_DEPTH,
    MAX_PROBLEMS,
    MAX_TEXT_CHARS,
    ImportReport,
)

METADATA_COLUMN = "metadata"
PROGRESS_EVERY = 10_000  # rows between progress callbacks
# NUL cannot be stored by PostgreSQL; lone surrogates are bytes that were not UTF-8.
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_PLAIN = (str, int, float, bool, type(None))

Problems = list[tuple[str, str]]
Progress = Callable[[str, float], None]  # (phase, fraction of the phase done)


@dataclass(frozen=True, slots=True)
class Columns:
    """Which columns hold the id, the text, the given label and who gave it (optional)."""

    id: str = "id"
    text: str = "text"
    label: str = "label"
    label_source: str = "label_source"


class CaseRow(NamedTuple):
    line: int
    external_id: str
    text: str
    label: str | None
    metadata: dict[str, Any]
    label_source: str | None = None  # None: the file names none (see the writer)


@dataclass(slots=True)
class Validated:
    """What the write pass needs from the validation pass."""

    existing: set[str] = field(default_factory=set)  # ids already in the project (update only)
    new_labels: list[str] = field(default_factory=list)


def _bad_chars(value: str) -> str | None:
    match = _BAD_CHARS.search(value)
    if match is None:
        return None
    return ERR_NUL if match.group() == "\x00" else ERR_UNDECODABLE


def _key_problem(key: Any) -> str | None:
    """What makes a metadata key unstorable (JSON columns hold neither NUL nor lone surrogates)."""
    key = str(key)
    if _BAD_CHARS.search(key) is None:
        return None
    return ERR_KEY_NUL if "\x00" in key else ERR_KEY_UNDECODABLE


def _too_deep(value: Any, limit: int = MAX_METADATA_DEPTH) -> bool:
    """Whether lists and objects nest more than `limit` levels (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean"}.get(type(value), "a value")


def _scalar(value: Any, what: str, column: str, problems: Problems) -> str | None:
    """The value as a stripped string, None when empty; a problem when it is not a scalar."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        value = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    else:
        problems.append((column, ERR_NOT_SCALAR.format(what=what, kind=_kind(value))))
        return None
    bad = _bad_chars(value)
    if bad:
        problems.append((column, bad))
        return None
    return value or None


def _jsonable(value: Any) -> Any:
    """Parquet's dates, decimals and bytes as JSON values (strings)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    return json.loads(json.dumps(value, default=str, allow_nan=False))


def _metadata(values: dict[str, Any], problems: Problems) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    packed = values.pop(METADATA_COLUMN, None)
    if isinstance(packed, str) and packed.strip():
        try:
            packed = json.loads(packed)
        except ValueError as exc:
            problems.append((METADATA_COLUMN, ERR_METADATA_JSON.format(problem=exc)))
            packed = None
        except RecursionError:
            problem = "it is nested too deeply to read"
            problems.append((METADATA_COLUMN, ERR_METADATA_JSON.format(problem=problem)))
            packed = None
    if isinstance(packed, dict):
        metadata.update(packed)
    elif packed not in (None, ""):
        problem = f"got {_kind(packed)}" if not isinstance(packed, str) else "got a string"
        problems.append((METADATA_COLUMN, ERR_METADATA_JSON.format(problem=problem)))
    metadata.update(values)
    metadata = {k: v for k, v in metadata.items() if v is not None and v != ""}
    if len(metadata) > MAX_COLUMNS:
        problems.append(("", ERR_TOO_MANY_KEYS.format(count=len(metadata), limit=MAX_COLUMNS)))
        return {}
    for key in metadata:
        bad_key = _key_problem(key)
        if bad_key:
            problems.append((str(key), bad_key))
    # Fast path (every CSV row): plain strings, short and clean all together.
    if all(type(v) is str for v in metadata.values()):
        joined = "".join(metadata.values())
        if len(joined) <= MAX_METADATA_CHARS and _BAD_CHARS.search(joined) is None:
            return metadata
    for key, value in list(metadata.items()):
        if isinstance(value, float) and not math.isfinite(value):
            del metadata[key]
            continue
        if isinstance(value, str):
            length, bad = len(value), _bad_chars(value)
        elif isinstance(value, _PLAIN):
            continue
        else:
            if isinstance(value, dict | list) and _too_deep(value):
                limit = MAX_METADATA_DEPTH
                problems.append((str(key), ERR_METADATA_TOO_DEEP.format(key=key, limit=limit)))
                continue
            try:
                value = metadata[key] = _jsonable(value)
            except ValueError:  # NaN inside a nested value
                value = metadata[key] = None
            dumped = json.dumps(value, ensure_ascii=False)
            length = len(dumped)
            bad = ERR_NUL if "\\u0000" in dumped else _bad_chars(dumped)
        if bad:
            problems.append((str(key), bad))
        elif length > MAX_METADATA_CHARS:
            problems.append(
                (
                    str(key),
                    ERR_METADATA_TOO_LONG.format(key=key, length=length, limit=MAX_METADATA_CHARS),
                )
            )
    return metadata


def normalize(
    line: int, values: dict[str, Any], columns: Columns
) -> tuple[CaseRow | None, Problems]:
    """One raw record as a CaseRow, or None with every problem found in it."""
    problems: Problems = []
    values = dict(values)
    external_id = _scalar(values.pop(columns.id, None), "id", columns.id, problems)
    raw_text = values.pop(columns.text, None)
    label = _scalar(values.pop(columns.label, None), "label", columns.label, problems)
    source_column = columns.label_source
    source = _scalar(values.pop(source_column, None), "label source", source_column, problems)
    text: str | None = None
    if isinstance(raw_text, str):
        bad = _bad_chars(raw_text)
        if bad:
            problems.append((columns.text, bad))
        elif raw_text.strip():
            text = raw_text
    elif raw_text is not None:
        text = _scalar(raw_text, "text", columns.text, problems)
    if external_id is None and not any(f == columns.id for f, _ in problems):
        problems.append((columns.id, ERR_MISSING_ID))
    elif external_id is not None and len(external_id) > MAX_ID_CHARS:
        length = len(external_id)
        problems.append((columns.id, ERR_ID_TOO_LONG.format(length=length, limit=MAX_ID_CHARS)))
    if text is None and not any(f == columns.text for f, _ in problems):
        problems.append((columns.text, ERR_MISSING_TEXT))
    elif text is not None and len(text) > MAX_TEXT_CHARS:
        length = len(text)
        problems.append(
            (columns.text, ERR_TEXT_TOO_LONG.format(length=length, limit=MAX_TEXT_CHARS))
        )
    if label is not None and len(label) > MAX_LABEL_CHARS:
        problems.append(
            (columns.label, ERR_LABEL_TOO_LONG.format(length=len(label), limit=MAX_LABEL_CHARS))
        )
    if source is not None and len(source) > MAX_LABEL_SOURCE_CHARS:
        length, limit = len(source), MAX_LABEL_SOURCE_CHARS
        problems.append(
            (source_column, ERR_LABEL_SOURCE_TOO_LONG.format(length=length, limit=limit))
        )
    metadata = _metadata(values, problems)
    if problems or external_id is None or text is None:
        return None, problems
    return CaseRow(line, external_id, text, label, metadata, source), problems


def _id_batch_size() -> int:
    return 900 if connection.vendor == "sqlite" else 5000


def label_spellings(classes: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    """How a file may name each class: by its name, or by its name as shown (display name)
    where no other class has that name. `classes` gives (name, display name, value)."""
    classes = list(classes)
    out = {name: value for name, _, value in classes}
    for _, display, value in classes:
        if display and display not in out:
            out[display] = value
    return out


def accepted_labels(project: Project) -> str:
    """The class names a file may use, for the message that refuses another:
    `'name' or 'Name as shown', 'other'`."""
    names = []
    for name, display in project.label_classes.order_by("order", "name").values_list(
        "name", "display_name"
    ):
        shown = f" or '{display}'" if display and display != name else ""
        names.append(f"'{name}'{shown}")
    return ", ".join(names) or "(none: the project has no classes)"


class _MissingKeys:
    """JSONL has no header: an id or text key absent from EVERY line is one problem (the key),
    not one per line. Per-line problems of an absent key wait here until the end tells which."""

    def __init__(self, columns: Columns) -> None:
        self.absent = {columns.id, columns.text}
        self.held: list[tuple[int, str, str]] = []  # the first MAX_PROBLEMS
        self.counts: dict[str, int] = {}  # held problems per key, listed or not
        self.first_line: int | None = None

    def hold(self, line: int, values: dict[str, Any], problems: Problems) -> Problems:
        """`problems` minus those held: a missing id or text whose key the line lacks."""
        if self.first_line is None:
            self.first_line = line
        if self.absent:
            self.absent -= values.keys()
        kept: Problems = []
        for field_name, message in problems:
            if message in (ERR_MISSING_ID, ERR_MISSING_TEXT) and field_name not in values:
                self.counts[field_name] = self.counts.get(field_name, 0) + 1
                if len(self.held) < MAX_PROBLEMS:
                    self.held.append((line, field_name, message))
            else:
                kept.append((field_name, message))
        return kept

    def report(self, report: ImportReport) -> None:
        """Each key no line had as one problem; the held problems of the others, in line order."""
        listed: dict[str, int] = {}
        for line, field_name, message in self.held:
            if field_name not in self.absent:
                report.add(line, field_name, message)
                listed[field_name] = listed.get(field_name, 0) + 1
        for field_name, count in self.counts.items():
            if field_name not in self.absent:
                report.error_count += count - listed.get(field_name, 0)
        for column in sorted(self.absent & set(self.counts)):
            report.add(self.first_line or 1, column, ERR_MISSING_KEY.format(column=column))
        report.errors.sort(key=lambda p: p.line)


def _missing_columns(fields: list[str], columns: Columns) -> list[str]:
    return [c for c in (columns.id, columns.text) if c not in fields]


def validate_records(
    *,
    project: Project,
    records: Iterable[Record],
    columns: Columns,
    update: bool,
    report: ImportReport,
    progress: Callable[[], None] | None = None,
) -> Validated:
    """Judge every record; problems go to `report`. Counts valid rows in `report.rows`.

    A file with a header (CSV, Parquet) that lacks the id or text column is refused by one
    problem per missing column, before any row is read."""
    result = Validated()
    classes = project.label_classes.values_list("name", "display_name", "name")
    spellings = label_spellings(classes)  # how the file may name a class -> its name
    first_seen: dict[str, int] = {}  # new label -> its first line
    seen: set[str] = set()
    check_db = Case.objects.filter(project=project).exists()
    pending: list[tuple[int, str]] = []
    batch = _id_batch_size()
    missing = _MissingKeys(columns)
    accepted: str | None = None

    def flush() -> None:
        ids = [external_id for _, external_id in pending]
        found = set(
            Case.objects.filter(project=project, external_id__in=ids).values_list(
                "external_id", flat=True
            )
        )
        for line, external_id in pending:
            if external_id not in found:
                continue
            if update:
                result.existing.add(external_id)
            else:
                report.add(line, columns.id, ERR_EXISTING_ID.format(external_id=external_id))
        pending.clear()

    def header_refused() -> bool:
        fields = getattr(records, "fields", None)
        if fields is None:
            return False
        absent = _missing_columns(fields, columns)
        for column in absent:
            report.add(1, column, ERR_MISSING_COLUMN.format(column=column))
        return bool(absent)

    count = 0
    for count, (line, values, broken) in enumerate(records, start=1):
        if count == 1 and header_refused():
            return result
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress()
        if broken is not None:
            report.add(line, *broken)
            continue
        values = values or {}
        row, problems = normalize(line, values, columns)
        if getattr(records, "fields", None) is None:
            problems = missing.hold(line, values, problems)
        for field_name, message in problems:
            report.add(line, field_name, message)
        if row is None:
            continue
        report.rows += 1
        external_id = row.external_id
        if external_id in seen:
            report.add(line, columns.id, ERR_DUPLICATE_ID.format(external_id=external_id))
            continue
        seen.add(external_id)
        if check_db:
            pending.append((line, external_id))
            if len(pending) >= batch:
                flush()
        label = row.label
        if label is not None and label not in spellings and label not in first_seen:
            if project.classes_fixed:
                if accepted is None:
                    accepted = accepted_labels(project)
                report.add(
                    line, columns.label, ERR_UNKNOWN_LABEL.format(label=label, accepted=accepted)
                )
            else:
                first_seen[label] = line
    if count == 0 and header_refused():
        return result
    if missing.counts:
        missing.report(report)
    if pending:
        flush()
    taken = set(project.label_classes.values_list("shortcut_key", flat=True))
    free = len(set(SHORTCUT_KEY_ORDER) - taken)
    for index, (label, line) in enumerate(first_seen.items()):
        if index >= free:
            report.add(line, columns.label, ERR_NO_SHORTCUT.format(label=label))
    result.new_labels = list(first_seen)
    return result
