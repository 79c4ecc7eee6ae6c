"""The import report and its messages: every problem names file, line (or row) and field.

Messages are module constants with placeholders, so tests assert the exact text and pages show it.
A CSV problem's line is the physical line where the record starts (the header is line 1); a
JSONL line is the physical line; a Parquet "line" is the row number counted from 1 (unit "row").
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_PROBLEMS = 100  # problems kept in a report; the rest are only counted
MAX_TEXT_CHARS = 100_000
MAX_METADATA_CHARS = 10_000
MAX_ID_CHARS = 200  # Case.external_id
MAX_LABEL_CHARS = 100  # LabelClass.name
MAX_LABEL_SOURCE_CHARS = 64  # Case.given_label_source
MAX_COLUMNS = 1000  # columns of a file (keys of a JSON line): more is not a case file
MAX_METADATA_DEPTH = 20  # nesting of a metadata value (JSON can nest until the parser overflows)
MAX_FIELD_CHARS = 200  # of a field name as a report shows it

ERR_MISSING_ID = "The id is missing."
ERR_MISSING_TEXT = "The text is missing."
ERR_DUPLICATE_ID = "The id '{external_id}' appears more than once in the file."
ERR_EXISTING_ID = (
    "A case with id '{external_id}' already exists in this project (import with update to "
    "replace it)."
)
ERR_UNKNOWN_LABEL = (
    "The label '{label}' is not one of the project's classes, and the project's classes are "
    "fixed. Accepted: {accepted}."
)
ERR_UNDECODABLE = "Undecodable bytes: the file must be UTF-8 encoded."
ERR_NUL = "The value holds a NUL character, which cannot be stored."
ERR_TEXT_TOO_LONG = "The text has {length:,} characters; at most {limit:,} are allowed."
ERR_METADATA_TOO_LONG = (
    "The metadata value '{key}' has {length:,} characters; at most {limit:,} are allowed."
)
ERR_ID_TOO_LONG = "The id has {length:,} characters; at most {limit:,} are allowed."
ERR_LABEL_TOO_LONG = "The label has {length:,} characters; at most {limit:,} are allowed."
ERR_LABEL_SOURCE_TOO_LONG = (
    "The label source has {length:,} characters; at most {limit:,} are allowed."
)
ERR_NOT_SCALAR = "The {what} must be a string or a number, not {kind}."
ERR_METADATA_JSON = "The metadata column must hold a JSON object: {problem}."
ERR_MALFORMED_JSON = "Malformed line: not valid JSON ({problem} at column {column})."
ERR_NOT_OBJECT = "Malformed line: expected a JSON object, got {kind}."
ERR_CSV_FIELDS = "Malformed line: {found} fields where the header has {expected}."
ERR_CSV = "Malformed line: {problem}."
ERR_MISSING_COLUMN = "The header has no '{column}' column."
ERR_MISSING_KEY = "No line has a '{column}' key."
ERR_TOO_MANY_COLUMNS = "The file has {count:,} columns; at most {limit:,} are allowed."
ERR_TOO_MANY_KEYS = "The line has {count:,} keys; at most {limit:,} are allowed."
ERR_HEADER_UNDECODABLE = "The header holds undecodable bytes: the file must be UTF-8 encoded."
ERR_HEADER_NUL = (
    "The header holds a NUL character: the file is probably UTF-16 encoded; save it as UTF-8."
)
ERR_UTF16 = "The file is {encoding} encoded (it starts with its byte-order mark); save it as UTF-8."
ERR_KEY_NUL = "The metadata key holds a NUL character, which cannot be stored."
ERR_KEY_UNDECODABLE = (
    "The metadata key holds undecodable bytes or a broken Unicode character (a lone "
    "surrogate), which cannot be stored."
)
ERR_METADATA_TOO_DEEP = (
    "The metadata value '{key}' is nested more than {limit} levels deep, which is not allowed."
)
ERR_TOO_DEEP = "Malformed line: the JSON is nested too deeply to read."
ERR_NUMBER_TOO_LONG = "Malformed line: a number has more than 4,300 digits."
ERR_NO_ROWS = "The file holds no cases: it is empty or has a header only."
ERR_DUPLICATE_COLUMN = "The header names the column '{column}' more than once."
ERR_UNKNOWN_FORMAT = "Unknown file type '{suffix}': use .csv, .jsonl or .parquet."
ERR_CANNOT_READ = "The file cannot be read: {problem}."
ERR_NO_SHORTCUT = "No free shortcut key is left for the new label '{label}'."


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def printable(value: str, limit: int | None = None) -> str:
    """`value` with what neither JSON columns nor pages can hold spelled out: NUL as `\\x00`,
    an undecodable byte (kept as a surrogate by `surrogateescape`) as `\\xe9`; cut at `limit`."""
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + "…"
    if _UNSTORABLE.search(value) is None:
        return value

    def spell(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"

    return _UNSTORABLE.sub(spell, value)


@dataclass(frozen=True, slots=True)
class ImportProblem:
    file: str
    line: int
    field: str
    message: str
    unit: str = "line"  # "row" for Parquet

    def __str__(self) -> str:
        where = f"{self.file}, {self.unit} {self.line}"
        return (
            f"{where}, field '{self.field}': {self.message}"
            if self.field
            else (f"{where}: {self.message}")
        )


@dataclass(slots=True)
class ImportReport:
    """What an import did, or why it did nothing. `ok` means the rows were written."""

    file: str
    unit: str = "line"
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    new_classes: list[str] = field(default_factory=list)
    changed_case_ids: list[int] = field(default_factory=list)  # text changed: re-embed, re-queue
    errors: list[ImportProblem] = field(default_factory=list)
    error_count: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def add(self, line: int, field_name: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_PROBLEMS:
            # The report is stored as JSON and shown: a bad byte in a field name must not stop it.
            field_name = printable(field_name, MAX_FIELD_CHARS)
            problem = ImportProblem(self.file, line, field_name, printable(message), self.unit)
            self.errors.append(problem)

    def summary(self) -> str:
        if not self.ok:
            more = self.error_count - len(self.errors)
            tail = f" ({more:,} more not listed)" if more > 0 else ""
            return f"Nothing imported: {self.error_count:,} problems in {self.file}{tail}."
        new = f", {len(self.new_classes)} new classes" if self.new_classes else ""
        return (
            f"Imported {self.rows:,} rows from {self.file}: {self.created:,} created, "
            f"{self.updated:,} updated, {self.unchanged:,} unchanged{new}."
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportReport:
        data = {k: v for k, v in data.items() if k != "ok"}
        errors = [ImportProblem(**e) for e in data.pop("errors", [])]
        return cls(**data, errors=errors)
