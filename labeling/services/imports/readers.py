"""Streaming readers for CSV, JSONL and Parquet: one raw record at a time, never the whole file.

A reader yields `(line, values, problem)`: `values` is the record as a dict (column -> value)
or None when the record itself is broken, then `problem` is `(field, message)`. `progress()`
says how far the reader got, 0..1. Values stay raw here; `validate.normalize` judges them.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from labeling.services.imports.report import (
    ERR_CANNOT_READ,
    ERR_CSV,
    ERR_CSV_FIELDS,
    ERR_DUPLICATE_COLUMN,
    ERR_MALFORMED_JSON,
    ERR_NOT_OBJECT,
    ERR_UNDECODABLE,
    ERR_UNKNOWN_FORMAT,
)

Record = tuple[int, dict[str, Any] | None, tuple[str, str] | None]

# A text may hold up to 100,000 characters; let the length check, not the csv module, refuse more.
csv.field_size_limit(16 * 1024 * 1024)

_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number"}


class Reader(Protocol):
    unit: str

    def __iter__(self) -> Iterator[Record]: ...

    def progress(self) -> float: ...


class _FileReader:
    unit = "line"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._size = max(1, os.path.getsize(self.path))
        self._raw: io.BufferedReader | None = None

    def progress(self) -> float:
        raw = self._raw
        if raw is None or raw.closed:
            return 0.0
        return min(1.0, raw.tell() / self._size)


class CsvReader(_FileReader):
    """RFC 4180 CSV with a header row; UTF-8 (a BOM is fine). Bad bytes survive as surrogates
    (`surrogateescape`) so the row, line and column of undecodable input can be named."""

    def __iter__(self) -> Iterator[Record]:
        with open(self.path, "rb") as raw:
            self._raw = raw
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
            reader = csv.reader(text, strict=True)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                return
            except csv.Error as exc:
                yield 1, None, ("", ERR_CSV.format(problem=exc))
                return
            for name in header:
                if header.count(name) > 1:
                    yield 1, None, (name, ERR_DUPLICATE_COLUMN.format(column=name))
                    return
            width = len(header)
            start = reader.line_num + 1
            while True:
                line = start
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    start = reader.line_num + 1
                    yield line, None, ("", ERR_CSV.format(problem=exc))
                    continue
                start = reader.line_num + 1
                if not fields:
                    continue  # a blank line
                if len(fields) != width:
                    found = len(fields)
                    yield line, None, ("", ERR_CSV_FIELDS.format(found=found, expected=width))
                    continue
                yield line, dict(zip(header, fields, strict=True)), None


class JsonlReader(_FileReader):
    """One JSON object per line, UTF-8; blank lines are skipped."""

    def __iter__(self) -> Iterator[Record]:
        with open(self.path, "rb") as raw:
            self._raw = raw
            for number, data in enumerate(raw, start=1):
                if number == 1 and data.startswith(b"\xef\xbb\xbf"):
                    data = data[3:]
                if not data.strip():
                    continue
                try:
                    line = data.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    yield number, None, ("", ERR_UNDECODABLE)
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    problem = ERR_MALFORMED_JSON.format(problem=exc.msg, column=exc.colno)
                    yield number, None, ("", problem)
                    continue
                if not isinstance(obj, dict):
                    kind = _JSON_KINDS.get(type(obj), "null" if obj is None else "a boolean")
                    yield number, None, ("", ERR_NOT_OBJECT.format(kind=kind))
                    continue
                yield number, obj, None


class ParquetReader:
    """Row groups read in batches; "line" is the row number counted from 1."""

    unit = "row"
    batch_rows = 8192

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._done = 0
        self._total = 1

    def progress(self) -> float:
        return min(1.0, self._done / self._total)

    def __iter__(self) -> Iterator[Record]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as exc:
            yield 1, None, ("", ERR_CANNOT_READ.format(problem=exc))
            return
        self._total = max(1, parquet.metadata.num_rows)
        row = 0
        try:
            for batch in parquet.iter_batches(batch_size=self.batch_rows):
                for values in batch.to_pylist():
                    row += 1
                    yield row, values, None
                self._done = row
        except (pa.ArrowException, OSError) as exc:
            yield row + 1, None, ("", ERR_CANNOT_READ.format(problem=exc))
        finally:
            parquet.close()


class RecordsReader:
    """Records from code (e.g. the synthetic generator) instead of a file: `make()` is called
    once per pass and must give the same records each time."""

    unit = "line"

    def __init__(self, make: Callable[[], Iterator[dict[str, Any]]], total: int) -> None:
        self.make = make
        self.total = max(1, total)
        self._done = 0

    def progress(self) -> float:
        return min(1.0, self._done / self.total)

    def __iter__(self) -> Iterator[Record]:
        for number, values in enumerate(self.make(), start=1):
            self._done = number
            yield number, values, None


READERS: dict[str, type[CsvReader] | type[JsonlReader] | type[ParquetReader]] = {
    ".csv": CsvReader,
    ".jsonl": JsonlReader,
    ".ndjson": JsonlReader,
    ".parquet": ParquetReader,
}


def reader_for(path: Path, *, file_name: str | None = None) -> Reader:
    """The reader for the file's type, chosen by the suffix of `file_name` (else of `path`).

    Raises ValueError with ERR_UNKNOWN_FORMAT for any other suffix.
    """
    suffix = Path(file_name or path).suffix.lower()
    if suffix not in READERS:
        raise ValueError(ERR_UNKNOWN_FORMAT.format(suffix=suffix or "(none)"))
    return READERS[suffix](path)
