"""Bulk import of cases from CSV, JSONL or Parquet: all or nothing, streamed, line-numbered.

`case_import(project=..., path=...)` validates the whole file first (nothing written), then
writes every row in one transaction. The returned `ImportReport` says what happened or names
file, line and field of the first problems. See `report` for the messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.db import IntegrityError

from labeling.models import Project
from labeling.services.imports.exported import exported_reader
from labeling.services.imports.readers import Reader, Record, reader_for
from labeling.services.imports.report import (
    ERR_CANNOT_READ,
    ERR_NO_ROWS,
    MAX_PROBLEMS,
    ImportProblem,
    ImportReport,
    printable,
)
from labeling.services.imports.validate import Columns, Progress, validate_records
from labeling.services.imports.writer import write_records

ERR_CONFLICT = (
    "Another change to this project's cases or classes happened during the import; nothing was "
    "imported. Try again. ({problem})"
)


__all__ = [
    "ERR_CONFLICT",
    "MAX_PROBLEMS",
    "Columns",
    "ImportProblem",
    "ImportReport",
    "case_import",
    "case_import_reader",
]


def case_import_reader(
    *,
    project: Project,
    reader: Reader,
    file_name: str,
    columns: Columns | None = None,
    update: bool = False,
    actor: Any = None,
    progress: Progress | None = None,
    on_written: Callable[[], None] | None = None,
) -> ImportReport:
    """Validate everything `reader` yields, then write it all in one transaction, or nothing.

    `reader` is iterated once per pass, so it must give the same records every time.
    `progress(phase, fraction)` is called now and then, phase `validate`, `write` or `update`.
    """
    columns = columns or Columns()
    started = time.perf_counter()
    report = ImportReport(file=printable(file_name, 200), unit=reader.unit)

    def validate_progress() -> None:
        if progress is not None:
            progress("validate", reader.progress())

    try:
        validated = validate_records(
            project=project,
            records=reader,
            columns=columns,
            update=update,
            report=report,
            progress=validate_progress,
        )
    except OSError as exc:
        report.add(1, "", ERR_CANNOT_READ.format(problem=exc))
    if report.ok and report.rows == 0:  # "Imported 0 rows" would hide a wrong file
        report.add(1, "", ERR_NO_ROWS)
    if report.ok:
        records: Callable[[], Iterable[Record]] = lambda: reader  # noqa: E731
        try:
            write_records(
                project=project,
                records=records,
                columns=columns,
                validated=validated,
                report=report,
                actor=actor,
                progress=progress,
                on_written=on_written,
            )
        except IntegrityError as exc:
            report.created = report.updated = report.unchanged = 0
            report.add(1, "", ERR_CONFLICT.format(problem=str(exc).splitlines()[0]))
        except OSError as exc:  # the file changed or vanished between the passes
            report.created = report.updated = report.unchanged = 0
            report.add(1, "", ERR_CANNOT_READ.format(problem=exc))
    report.seconds = round(time.perf_counter() - started, 3)
    if report.ok and (report.created or report.changed_case_ids):
        _after_import(project=project, report=report)
    return report


def _after_import(*, project: Project, report: ImportReport) -> None:
    """New cases need embedding and scoring, changed ones a fresh label: queue and embed.

    Cases whose text changed are queued again (their old annotations are stale); the queue is
    then topped up at random until a model exists; the embedding job embeds the new texts and
    then asks for a retrain, which scores them.
    """
    from labeling.hooks import model_side
    from labeling.services.queue import queue_cases_again, queue_fill_random

    if report.changed_case_ids:
        queue_cases_again(project=project, case_ids=report.changed_case_ids)
    queue_fill_random(project=project)
    model_side().embedding_start(project=project, reason=f"{report.created:,} cases imported")


def case_import(
    *,
    project: Project,
    path: Path | str,
    file_name: str | None = None,
    columns: Columns | None = None,
    update: bool = False,
    actor: Any = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the cases of one CSV, JSONL or Parquet file (by suffix of `file_name` or `path`).

    Columns name the id, text, label and label source (defaults `id`, `text`, `label`,
    `label_source`; the source is `import` when absent); a `metadata` column of JSON objects is
    unpacked and every other column kept as metadata; a file this workbench exported is
    recognised and read back as exported (`exported`). With `update`, ids already in the project
    replace text, metadata and (when given) label and source; otherwise they are problems.
    Returns the report; nothing is written unless `report.ok`.
    """
    path = Path(path)
    name = file_name or path.name
    try:
        reader = reader_for(path, file_name=name)
    except ValueError as exc:
        report = ImportReport(file=printable(name, 200))
        report.add(1, "", str(exc))
        return report
    # A file this workbench exported comes back as it was exported (exported.py).
    reader = exported_reader(reader, path=path, file_name=name, columns=columns or Columns())
    return case_import_reader(
        project=project,
        reader=reader,
        file_name=name,
        columns=columns,
        update=update,
        actor=actor,
        progress=progress,
    )
