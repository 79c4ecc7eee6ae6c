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
    ERR_HEADER_NUL,
    ERR_HEADER_UNDECODABLE,
    ERR_MALFORMED_JSON,
    ERR_NOT_OBJECT,
    ERR_NUMBER_TOO_LONG,
    ERR_TOO_DEEP,
    ERR_TOO_MANY_COLUMNS,
    ERR_UNDECODABLE,
    ERR_UNKNOWN_FORMAT,
    ERR_UTF16,
    MAX_COLUMNS,
)

Record = tuple[int, dict[str, Any] | None, tuple[str, str] | None]

# A text may hold up to 100,000 characters; let the length check, not the csv module, refuse more.
csv.field_size_limit(16 * 1024 * 1024)

_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number"}
# Byte-order marks of encodings that are not UTF-8 (UTF-32 first: its LE mark starts as UTF-16's).
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
# Separators a spreadsheet may have used instead of the comma (its "CSV" in some locales).
_OTHER_DELIMITERS = (";", "\t")
_HEADER_SNIFF_BYTES = 1 << 20


def _foreign_bom(start: bytes) -> str | None:
    """The encoding whose byte-order mark `start` begins with, when it is not UTF-8."""
    for mark, encoding in _BOMS:
        if start.startswith(mark):
            return encoding
    return None


def _delimiter(header: bytes) -> str:
    """The comma, unless the header holds none but semicolons or tabs: then the commoner one."""
    if b"," in header:
        return ","
    counts = {d: header.count(d.encode()) for d in _OTHER_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def header_problem(header: list[str]) -> tuple[str, str] | None:
    """What is wrong with a header's column names, as (field, message); None when nothing.
    Linear: a set, never a count per name (20,000 columns took 29 s that way)."""
    if len(header) > MAX_COLUMNS:
        return "", ERR_TOO_MANY_COLUMNS.format(count=len(header), limit=MAX_COLUMNS)
    seen: set[str] = set()
    for name in header:
        if "\x00" in name:
            return name, ERR_HEADER_NUL
        if any("\ud800" <= c <= "\udfff" for c in name):
            return name, ERR_HEADER_UNDECODABLE
        if name in seen:
            return name, ERR_DUPLICATE_COLUMN.format(column=name)
        seen.add(name)
    return None


class Reader(Protocol):
    unit: str

    def __iter__(self) -> Iterator[Record]: ...

    def progress(self) -> float: ...


class _FileReader:
    unit = "line"
    # The column names, once a pass has read them (None: the format has no header).
    fields: list[str] | None = None

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
    (`surrogateescape`) so the row, line and column of undecodable input can be named. A header
    with no comma but semicolons or tabs names the separator (`delimiter`)."""

    delimiter = ","

    def __iter__(self) -> Iterator[Record]:
        with open(self.path, "rb") as raw:
            self._raw = raw
            start_bytes = raw.readline(_HEADER_SNIFF_BYTES)
            encoding = _foreign_bom(start_bytes)
            if encoding is not None:
                yield 1, None, ("", ERR_UTF16.format(encoding=encoding))
                return
            self.delimiter = _delimiter(start_bytes)
            raw.seek(0)
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
            reader = csv.reader(text, strict=True, delimiter=self.delimiter)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                return
            except csv.Error as exc:
                yield 1, None, ("", ERR_CSV.format(problem=exc))
                return
            problem = header_problem(header)
            if problem is not None:
                yield 1, None, problem
                return
            self.fields = header
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
                if number == 1:
                    encoding = _foreign_bom(data)
                    if encoding is not None:
                        yield 1, None, ("", ERR_UTF16.format(encoding=encoding))
                        return
                    if data.startswith(b"\xef\xbb\xbf"):
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
                except RecursionError:
                    yield number, None, ("", ERR_TOO_DEEP)
                    continue
                except ValueError:  # an integer past Python's 4,300-digit conversion limit
                    yield number, None, ("", ERR_NUMBER_TOO_LONG)
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
    fields: list[str] | None = None

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
        names = list(parquet.schema_arrow.names)
        problem = header_problem(names)
        if problem is not None:
            parquet.close()
            yield 1, None, problem
            return
        self.fields = names
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
