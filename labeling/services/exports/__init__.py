"""Export of a project's cleaned dataset: one row per case with its final label and provenance.

`case_export(project=..., fmt=..., path=..., options=...)` reads one snapshot (`rows`), streams
it page by page through a writer (`writers`) into temporary files beside `path`, renames them
into place, and writes the manifest (`manifest`) last, beside the file. An export that fails or
is killed leaves no file under the final names. Each export writes an audit event.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils import timezone

from labeling.models import Project
from labeling.services.exports.manifest import (
    annotations_path_for,
    file_sha256,
    manifest_path_for,
    write_manifest,
)
from labeling.services.exports.rows import (
    CASE_CHOICES,
    SPLIT_CHOICES,
    TIME_ISO,
    TIME_MICROS,
    ExportOptions,
    export_count,
    export_pages,
    export_plan,
    read_snapshot,
)
from labeling.services.exports.schema import CASE_NAMES, FORMAT_VERSION, MANIFEST_KIND
from labeling.services.exports.writers import (
    CsvExportWriter,
    ExportWriter,
    JsonlExportWriter,
    ParquetExportWriter,
)
from workbench.core.audit import audit_record
from workbench.core.faults import fault_point

FORMATS = ("csv", "jsonl", "parquet")
AUDIT_ACTION = "cases_exported"
ERR_FORMAT = "Unknown export format {fmt!r}: use csv, jsonl or parquet."

ExportProgress = Callable[[float, str], None]

__all__ = [
    "AUDIT_ACTION",
    "CASE_CHOICES",
    "FORMATS",
    "SPLIT_CHOICES",
    "ExportOptions",
    "ExportResult",
    "case_export",
]


@dataclass
class ExportResult:
    path: Path
    manifest_path: Path
    rows: int
    annotations: int
    sha256: str
    seconds: float
    files: list[Path] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def _partial(path: Path) -> Path:
    """A hidden temporary name in the same folder (a rename within one file system is atomic)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")


def case_export(
    *,
    project: Project,
    fmt: str,
    path: Path | str,
    options: ExportOptions | None = None,
    actor: Any = None,
    progress: ExportProgress | None = None,
) -> ExportResult:
    """Write the project's cases to `path` in `fmt` (csv, jsonl, parquet) and the manifest
    beside it (`<path>.manifest.json`); with provenance in CSV mode also `<stem>.annotations.csv`.
    Raises ValueError for an unknown format; any failure removes the temporary files."""
    from labeling.hooks import model_side

    if fmt not in FORMATS:
        raise ValueError(ERR_FORMAT.format(fmt=fmt))
    options = options or ExportOptions()
    started = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    companion = annotations_path_for(path) if fmt == "csv" and options.provenance else None
    temporary = {path: _partial(path)}
    if companion is not None:
        temporary[companion] = _partial(companion)
    writer: ExportWriter | None = None
    rows = 0
    try:
        with read_snapshot():
            sources = model_side().export_sources(project=project)
            champion = sources.champion_number if sources is not None else None
            plan = export_plan(
                project_id=project.pk,
                options=options,
                sources=sources,
                time_format=TIME_MICROS if fmt == "parquet" else TIME_ISO,
            )
            total = export_count(plan)
            if fmt == "csv":
                writer = CsvExportWriter(
                    temporary[path], temporary.get(companion) if companion else None
                )
            elif fmt == "jsonl":
                writer = JsonlExportWriter(temporary[path])
            else:
                writer = ParquetExportWriter(temporary[path], options.provenance)
            if progress is not None:
                progress(0.0, f"Exporting {total:,} cases")
            for page in export_pages(
                project_id=project.pk,
                plan=plan,
                provenance=options.provenance,
                champion_number=champion,
            ):
                writer.write(page)
                if not rows:
                    fault_point("export")  # the crash tests kill the worker here
                rows += len(page.cases)
                if progress is not None:
                    progress(0.98 * rows / max(1, total), f"Exported {rows:,} of {total:,} cases")
            exported_at = timezone.now()
        writer.close()
        files = []
        for final, partial in temporary.items():
            files.append(
                {
                    "file": final.name,
                    "sha256": file_sha256(partial),
                    "bytes": partial.stat().st_size,
                }
            )
        manifest = {
            "kind": MANIFEST_KIND,
            "format_version": FORMAT_VERSION,
            "format": fmt,
            "file": path.name,
            "rows": rows,
            "annotations": writer.annotation_rows if options.provenance else None,
            "sha256": files[0]["sha256"],
            "bytes": files[0]["bytes"],
            "files": files,
            "project": {"id": project.pk, "slug": project.slug, "name": project.name},
            "champion_version": champion,
            "exported_at": exported_at.isoformat(),
            "options": options.to_json(),
            "columns": list(CASE_NAMES),
            "csv_neutralised": fmt == "csv",
        }
        for final, partial in temporary.items():
            partial.replace(final)
        manifest_path = manifest_path_for(path)
        write_manifest(manifest_path, manifest)
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):  # the first error is the one to raise
                writer.close()
        for partial in temporary.values():
            partial.unlink(missing_ok=True)
        raise
    audit_record(
        actor=actor,
        action=AUDIT_ACTION,
        obj=project,
        project=project,
        after={k: manifest[k] for k in ("format", "file", "rows", "sha256", "options")}
        | {"champion_version": champion},
    )
    return ExportResult(
        path=path,
        manifest_path=manifest_path,
        rows=rows,
        annotations=writer.annotation_rows if options.provenance else 0,
        sha256=str(manifest["sha256"]),
        seconds=round(time.perf_counter() - started, 3),
        files=list(temporary),
        manifest=manifest,
    )
