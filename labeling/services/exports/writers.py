"""The export's writers: CSV (plus an annotations CSV), JSONL and Parquet, a page at a time.

Each writer takes `Page`s (`rows.py`) and writes to paths it is given (temporary names; the
caller renames). CSV cells of text columns that begin with `=`, `+`, `-`, `@`, tab, carriage
return or `'` get a leading `'` (`neutralise`): a spreadsheet then shows text, never runs a
formula; the import strips exactly one leading `'` from text cells of a recognised export
(`unneutralise`), so every text comes back as it was.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from labeling.services.exports.rows import Page
from labeling.services.exports.schema import (
    ANNOTATION_COLUMNS,
    ANNOTATION_CSV_NAMES,
    ANNOTATION_NAMES,
    CASE_COLUMNS,
    CASE_NAMES,
    PROVENANCE_COLUMN,
    Column,
    parquet_schema,
)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A text beginning with the quote itself is quoted too, so stripping one quote is exact.
NEUTRALISE_STARTS = (*FORMULA_STARTS, "'")
PARQUET_ROWS_PER_GROUP = 50_000
PARQUET_ANNOTATIONS_PER_GROUP = 50_000


def neutralise(value: str) -> str:
    """`value` safe for a spreadsheet cell: a leading `'` before a formula's first character."""
    return "'" + value if value.startswith(NEUTRALISE_STARTS) else value


def unneutralise(value: str) -> str:
    """The inverse of `neutralise` on a cell it wrote."""
    return value[1:] if value.startswith("'") else value


_NEUTRALISE = frozenset(NEUTRALISE_STARTS)


def _text(value: str | None) -> str | None:
    """A text cell: None stays None (the csv module writes ""), a formula start is quoted."""
    if value and value[0] in _NEUTRALISE:
        return "'" + value
    return value


def _flag(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def _time(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


_CELL = {"string": "_text", "json": "_text", "bool": "_flag", "timestamp": "_time"}


def _csv_row(columns: tuple[Column, ...]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function from a row tuple to its CSV cells, written out per column (no loop per cell:
    this runs for every one of a million rows)."""
    cells = ", ".join(
        f"{_CELL[c.kind]}(v[{i}])" if c.kind in _CELL else f"v[{i}]" for i, c in enumerate(columns)
    )
    namespace: dict[str, Any] = {"_text": _text, "_flag": _flag, "_time": _time}
    exec(f"def row(v):\n    return ({cells},)", namespace)  # our own column names only
    row: Callable[[tuple[Any, ...]], tuple[Any, ...]] = namespace["row"]
    return row


class CsvExportWriter:
    """RFC 4180 CSV, UTF-8, a header row; annotations (provenance) in a second file."""

    def __init__(self, path: Path, annotations_path: Path | None) -> None:
        # The writer owns its files across pages; close() closes them.
        self.file: IO[str] = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self.writer = csv.writer(self.file)
        self.writer.writerow(CASE_NAMES)
        self.row = _csv_row(CASE_COLUMNS)
        self.annotations_file: IO[str] | None = None
        self.annotation_rows = 0
        if annotations_path is not None:
            self.annotations_file = open(  # noqa: SIM115
                annotations_path, "w", encoding="utf-8", newline=""
            )
            self.annotations_writer = csv.writer(self.annotations_file)
            self.annotations_writer.writerow(ANNOTATION_CSV_NAMES)
            self.annotation_row = _csv_row(ANNOTATION_COLUMNS)

    def write(self, page: Page) -> None:
        self.writer.writerows(map(self.row, page.cases))
        if self.annotations_file is not None and page.annotations is not None:
            annotation_row = self.annotation_row
            out: list[tuple[Any, ...]] = []
            for values, annotations in zip(page.cases, page.annotations, strict=True):
                external_id = neutralise(values[0])
                out.extend((external_id, *annotation_row(a)) for a in annotations)
            self.annotation_rows += len(out)
            self.annotations_writer.writerows(out)

    def close(self) -> None:
        self.file.close()
        if self.annotations_file is not None:
            self.annotations_file.close()


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


_TAIL = CASE_NAMES[3:]  # after external_id, text and metadata
_ANNOTATION_JSON = tuple(c.kind == "json" for c in ANNOTATION_COLUMNS)


def _annotation_object(values: tuple[Any, ...]) -> dict[str, Any]:
    out = {}
    for name, value, is_json in zip(ANNOTATION_NAMES, values, _ANNOTATION_JSON, strict=True):
        if is_json:
            out[name] = json.loads(value) if value else {}
        else:
            out[name] = _json_value(value)
    return out


class JsonlExportWriter:
    """One JSON object per line, UTF-8; `metadata` an object, provenance a list `annotations`."""

    def __init__(self, path: Path) -> None:
        self.file: IO[str] = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        self.annotation_rows = 0

    def write(self, page: Page) -> None:
        dumps = json.dumps
        lines = []
        annotations = page.annotations
        for index, values in enumerate(page.cases):
            tail = dict(zip(_TAIL, map(_json_value, values[3:]), strict=True))
            if annotations is not None:
                tail[PROVENANCE_COLUMN] = [_annotation_object(a) for a in annotations[index]]
                self.annotation_rows += len(annotations[index])
            # The stored metadata is JSON text already: spliced in, never parsed and redumped.
            lines.append(
                f'{{"external_id": {dumps(values[0], ensure_ascii=False)}, '
                f'"text": {dumps(values[1], ensure_ascii=False)}, '
                f'"metadata": {values[2] or "{}"}, '
                f"{dumps(tail, ensure_ascii=False)[1:]}\n"
            )
        self.file.writelines(lines)

    def close(self) -> None:
        self.file.close()


def _arrow(values: tuple[Any, ...], kind: Any) -> Any:
    """One column as an Arrow array; times may come as microseconds since the epoch."""
    import pyarrow as pa

    if pa.types.is_timestamp(kind) and any(type(v) is int for v in values):
        return pa.array(values, type=pa.int64()).cast(kind)
    return pa.array(values, type=kind)


class ParquetExportWriter:
    """Parquet with the fixed schema (`schema.parquet_schema`), row groups of ~50,000 cases."""

    def __init__(self, path: Path, provenance: bool) -> None:
        import pyarrow.parquet as pq

        self.schema = parquet_schema(provenance)
        self.provenance = provenance
        self.writer = pq.ParquetWriter(path, self.schema, compression="snappy")
        self.pending: list[Page] = []
        self.pending_rows = 0
        self.pending_annotations = 0
        self.annotation_rows = 0

    def write(self, page: Page) -> None:
        self.pending.append(page)
        self.pending_rows += len(page.cases)
        if page.annotations is not None:
            self.pending_annotations += sum(map(len, page.annotations))
        if (
            self.pending_rows >= PARQUET_ROWS_PER_GROUP
            or self.pending_annotations >= PARQUET_ANNOTATIONS_PER_GROUP
        ):
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self.pending_rows:
            return
        cases = [values for page in self.pending for values in page.cases]
        columns = list(zip(*cases, strict=True))
        arrays = [
            _arrow(column, field.type) for column, field in zip(columns, self.schema, strict=False)
        ]
        if self.provenance:
            nested = []
            for page in self.pending:
                for annotations in page.annotations or []:
                    nested.append(
                        [dict(zip(ANNOTATION_NAMES, a, strict=True)) for a in annotations]
                    )
                    self.annotation_rows += len(annotations)
            arrays.append(pa.array(nested, type=self.schema.field(PROVENANCE_COLUMN).type))
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.pending, self.pending_rows, self.pending_annotations = [], 0, 0

    def close(self) -> None:
        self._flush()
        self.writer.close()


ExportWriter = CsvExportWriter | JsonlExportWriter | ParquetExportWriter
