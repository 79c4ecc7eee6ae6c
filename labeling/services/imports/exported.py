"""Importing a file this workbench exported: neutralised CSV cells restored, derived columns
left out of the metadata, the final label taken as the given label.

A file is recognised as an export by its manifest beside it (`<file>.manifest.json` naming the
file, with matching size and sha256) or by its header: the export's fixed columns, in order,
first (`HEADER_PREFIX`: CSV, Parquet; for JSONL the first object's keys). Then text cells of a CSV lose the one
leading `'` the export added (`exports.writers.unneutralise`), the export's derived columns
(labels, scores, flags, times, annotations) are dropped instead of becoming metadata, and when
the import's id or label column is absent, `external_id` and `final_label` stand in for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labeling.services.exports.manifest import export_manifest_for
from labeling.services.exports.schema import CASE_NAMES, HEADER_PREFIX, PROVENANCE_COLUMN
from labeling.services.exports.writers import unneutralise
from labeling.services.imports.readers import CsvReader, Reader, Record
from labeling.services.imports.validate import METADATA_COLUMN, Columns

_ID, _LABEL = "external_id", "final_label"


class ExportedFileReader:
    """Wraps a file reader; passes records through untouched unless the file is an export."""

    def __init__(self, inner: Reader, *, columns: Columns, manifest: dict[str, Any] | None):
        self.inner = inner
        self.unit = inner.unit
        self.columns = columns
        self.manifest = manifest
        self.csv = isinstance(inner, CsvReader)
        self.recognised: bool | None = None
        self._renames: dict[str, str] = {}
        self._drop: frozenset[str] = frozenset()

    def progress(self) -> float:
        return self.inner.progress()

    @property
    def fields(self) -> list[str] | None:
        fields: list[str] | None = getattr(self.inner, "fields", None)
        if fields is None or not self.recognised:
            return fields
        return [self._renames.get(f, f) for f in fields if f not in self._drop]

    def _decide(self, names: list[str]) -> None:
        shaped = tuple(names[: len(HEADER_PREFIX)]) == HEADER_PREFIX
        self.recognised = self.manifest is not None or shaped
        if not self.recognised:
            return
        keep = {self.columns.id, self.columns.text, self.columns.label, self.columns.label_source}
        renames = {}
        if self.columns.id not in names and _ID in names:
            renames[_ID] = self.columns.id
        if self.columns.label not in names and _LABEL in names:
            renames[_LABEL] = self.columns.label
        self._renames = renames
        derived = {*CASE_NAMES, PROVENANCE_COLUMN} - {METADATA_COLUMN}
        self._drop = frozenset(n for n in derived if n not in keep and n not in renames)

    def __iter__(self) -> Iterator[Record]:
        for line, values, problem in self.inner:
            if values is not None and self.recognised is None:
                fields = getattr(self.inner, "fields", None)
                self._decide(list(fields if fields is not None else values))
            if values is not None and self.recognised:
                values = self._restore(values)
            yield line, values, problem

    def _restore(self, values: dict[str, Any]) -> dict[str, Any]:
        out = {}
        drop, renames = self._drop, self._renames
        for key, value in values.items():
            if key in drop:
                continue
            if self.csv and isinstance(value, str):
                value = unneutralise(value)
            out[renames.get(key, key)] = value
        return out


def exported_reader(
    reader: Reader, *, path: Path, file_name: str | None, columns: Columns
) -> ExportedFileReader:
    """`reader`, aware of this workbench's exports (see the module docstring)."""
    manifest = export_manifest_for(path, file_name=file_name)
    return ExportedFileReader(reader, columns=columns, manifest=manifest)
