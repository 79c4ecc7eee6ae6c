"""The import report and its messages: every problem names file, line (or row) and field.

Messages are module constants with placeholders, so tests assert the exact text and pages show it.
A CSV problem's line is the physical line where the record starts (the header is line 1); a
JSONL line is the physical line; a Parquet "line" is the row number counted from 1 (unit "row").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_PROBLEMS = 100  # problems kept in a report; the rest are only counted
MAX_TEXT_CHARS = 100_000
MAX_METADATA_CHARS = 10_000
MAX_ID_CHARS = 200  # Case.external_id
MAX_LABEL_CHARS = 100  # LabelClass.name
MAX_LABEL_SOURCE_CHARS = 64  # Case.given_label_source

ERR_MISSING_ID = "The id is missing."
ERR_MISSING_TEXT = "The text is missing."
ERR_DUPLICATE_ID = "The id '{external_id}' appears more than once in the file."
ERR_EXISTING_ID = (
    "A case with id '{external_id}' already exists in this project (import with update to "
    "replace it)."
)
ERR_UNKNOWN_LABEL = (
    "The label '{label}' is not one of the project's classes, and the project's classes are fixed."
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
ERR_DUPLICATE_COLUMN = "The header names the column '{column}' more than once."
ERR_UNKNOWN_FORMAT = "Unknown file type '{suffix}': use .csv, .jsonl or .parquet."
ERR_CANNOT_READ = "The file cannot be read: {problem}."
ERR_NO_SHORTCUT = "No free shortcut key is left for the new label '{label}'."


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
            self.errors.append(ImportProblem(self.file, line, field_name, message, self.unit))

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
