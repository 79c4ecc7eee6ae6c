"""The write pass: every row of a validated file in ONE transaction, or none of them.

New cases go in with `COPY` on PostgreSQL (psycopg 3 `cursor.copy`) and batched `executemany`
inserts elsewhere, each with its given label's source (`import` when the file names none); with
update, existing cases whose text, metadata, given label or its source changed are rewritten in
batches, each change audited. Annotations keep the content hash of the text they were made on,
so a changed text makes them stale (DESIGN) without touching them; the resolved labels of cases
whose text or given label changed are recomputed in the same transaction (a new source alone
changes neither the resolution nor the queue).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from labeling.models import IMPORT_SOURCE, Case, LabelClass, Project
from labeling.services.imports.readers import Record
from labeling.services.imports.report import ImportReport
from labeling.services.imports.validate import (
    PROGRESS_EVERY,
    CaseRow,
    Columns,
    Progress,
    Validated,
    label_spellings,
    normalize,
)
from labeling.services.projects import next_free_shortcut_key
from labeling.services.resolution import resolutions_recompute_many
from labeling.splits import split_function
from workbench.core.audit import audit_record
from workbench.core.hashing import content_hash
from workbench.core.models import AuditEvent

INSERT_BATCH = 2000
UPDATE_BATCH = 500
_COLUMNS = (
    "project",
    "external_id",
    "text",
    "metadata",
    "given_label",
    "given_label_source",
    "split",
    "content_hash",
    "imported_at",
    "updated_at",
    "changed_at",
)


def _rows(
    records: Iterable[Record], columns: Columns, total: int, phase: str, progress: Progress | None
) -> Iterator[CaseRow]:
    """The validated records again, as CaseRows (the validation pass found no problem)."""
    for count, (line, values, _broken) in enumerate(records, start=1):
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(phase, count / max(1, total))
        row, _problems = normalize(line, values or {}, columns)
        if row is not None:
            yield row


def _classes_ensure(
    *, project: Project, new_labels: list[str], report: ImportReport
) -> dict[str, int]:
    """Create the file's new labels as classes (open projects); how a file may name each class
    (name or display name) -> its id."""
    if new_labels:
        existing = list(project.label_classes.values_list("shortcut_key", "order"))
        taken = {key for key, _ in existing}
        order = max((o for _, o in existing), default=-1) + 1
        created = []
        for offset, name in enumerate(new_labels):
            key = next_free_shortcut_key(taken)
            taken.add(key)
            display = name.replace("_", " ").capitalize()
            created.append(
                LabelClass(
                    project=project,
                    name=name,
                    display_name=display,
                    shortcut_key=key,
                    order=order + offset,
                )
            )
        LabelClass.objects.bulk_create(created)
        report.new_classes = list(new_labels)
    # A file may name a class as shown (its display name) too: `label_spellings`.
    return label_spellings(project.label_classes.values_list("name", "display_name", "id"))


def _insert_new(
    *,
    project: Project,
    rows: Iterable[CaseRow],
    skip: set[str],
    label_ids: dict[str, int],
    now: Any,
) -> int:
    split = split_function(
        split_seed=project.split_seed, evaluation_fraction=project.evaluation_fraction
    )
    dumps, pid, created = json.dumps, project.pk, 0
    table = connection.ops.quote_name(Case._meta.db_table)
    columns = {f.name: f.column for f in Case._meta.concrete_fields}
    names = ", ".join(connection.ops.quote_name(columns[f]) for f in _COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from psycopg.copy import QueuedLibpqWriter

            # The queued writer sends from a thread, so the server inserts (and updates the
            # indexes) while Python prepares the next rows.
            pg = cursor.cursor
            sql = f"COPY {table} ({names}) FROM STDIN"
            with pg.copy(sql, writer=QueuedLibpqWriter(pg)) as copy:
                write = copy.write_row
                for row in rows:
                    if row.external_id in skip:
                        continue
                    ext, text = row.external_id, row.text
                    meta = dumps(row.metadata, ensure_ascii=False)
                    label = label_ids.get(row.label) if row.label else None
                    source = row.label_source or IMPORT_SOURCE
                    hashed = content_hash(text)
                    write((pid, ext, text, meta, label, source, split(ext), hashed, now, now, now))
                    created += 1
            return created
        stamp = connection.ops.adapt_datetimefield_value(now)
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            if row.external_id in skip:
                continue
            ext, text = row.external_id, row.text
            meta = dumps(row.metadata, ensure_ascii=False)
            label = label_ids.get(row.label) if row.label else None
            source = row.label_source or IMPORT_SOURCE
            hashed = content_hash(text)
            batch.append(
                (pid, ext, text, meta, label, source, split(ext), hashed, stamp, stamp, stamp)
            )
            if len(batch) >= INSERT_BATCH:
                cursor.executemany(sql, batch)
                created += len(batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)
            created += len(batch)
    return created


def _update_batch(
    *,
    project: Project,
    batch: list[CaseRow],
    label_ids: dict[str, int],
    actor: Any,
    now: Any,
    report: ImportReport,
) -> None:
    names: dict[int | None, str] = {}
    for name, pk in label_ids.items():  # names come before the display names: keep the name
        names.setdefault(pk, name)
    cases = {
        c.external_id: c
        for c in Case.objects.filter(
            project=project, external_id__in=[r.external_id for r in batch]
        ).only(
            "external_id",
            "text",
            "metadata",
            "given_label_id",
            "given_label_source",
            "content_hash",
        )
    }
    changed: list[Case] = []
    resolve: list[int] = []  # cases whose text or given label changed: their resolution may
    events: list[AuditEvent] = []
    for row in batch:
        case = cases[row.external_id]
        new_hash = content_hash(row.text)
        # An empty label in the file keeps the given label (a texts-only file drops none).
        label_id = label_ids[row.label] if row.label else case.given_label_id
        # An empty source keeps the case's, unless the label changed: then the file gave it.
        source = row.label_source or (
            case.given_label_source if label_id == case.given_label_id else IMPORT_SOURCE
        )
        text_changed = new_hash != case.content_hash
        if (
            not text_changed
            and row.metadata == case.metadata
            and label_id == case.given_label_id
            and source == case.given_label_source
        ):
            report.unchanged += 1
            continue
        before_label = case.given_label_id
        before = {
            "content_hash": case.content_hash,
            "given_label": names.get(before_label),
            "given_label_source": case.given_label_source,
        }
        case.text, case.content_hash, case.metadata = row.text, new_hash, row.metadata
        case.given_label_id, case.given_label_source, case.updated_at = label_id, source, now
        case.changed_at = now
        after = {
            "content_hash": new_hash,
            "given_label": names.get(label_id),
            "given_label_source": source,
            "line": row.line,
        }
        events.append(
            AuditEvent(
                actor=actor if getattr(actor, "pk", None) else None,
                project=project,
                action="case.update",
                object_type=Case._meta.label_lower,
                object_id=str(case.pk),
                before=before,
                after=after,
            )
        )
        changed.append(case)
        if text_changed:
            report.changed_case_ids.append(case.pk)
        if text_changed or label_id != before_label:
            resolve.append(case.pk)
    fields = ["text", "content_hash", "metadata", "given_label", "given_label_source"]
    fields += ["updated_at", "changed_at"]
    Case.objects.bulk_update(changed, fields, batch_size=UPDATE_BATCH)
    # Annotations of the old text are stale now (kept, no longer counted) and a new given label
    # is what a case without current annotations resolves to: rewrite those resolutions.
    resolutions_recompute_many(project=project, case_ids=resolve, actor=actor)
    AuditEvent.objects.bulk_create(events, batch_size=UPDATE_BATCH)
    report.updated += len(changed)


def write_records(
    *,
    project: Project,
    records: Callable[[], Iterable[Record]],
    columns: Columns,
    validated: Validated,
    report: ImportReport,
    actor: Any = None,
    progress: Progress | None = None,
    on_written: Callable[[], None] | None = None,
) -> None:
    """Write what `validate_records` accepted, all in one transaction.

    `records()` is called once per sweep (twice with existing ids) and must give the same
    records as the validation pass did. `on_written` runs inside the transaction, last.
    """
    now = timezone.now()
    existing = validated.existing
    with transaction.atomic():
        label_ids = _classes_ensure(project=project, new_labels=validated.new_labels, report=report)
        rows = _rows(records(), columns, report.rows, "write", progress)
        report.created = _insert_new(
            project=project, rows=rows, skip=existing, label_ids=label_ids, now=now
        )
        if existing:
            batch: list[CaseRow] = []
            for row in _rows(records(), columns, report.rows, "update", progress):
                if row.external_id not in existing:
                    continue
                batch.append(row)
                if len(batch) >= UPDATE_BATCH:
                    _update_batch(
                        project=project,
                        batch=batch,
                        label_ids=label_ids,
                        actor=actor,
                        now=now,
                        report=report,
                    )
                    batch = []
            if batch:
                _update_batch(
                    project=project,
                    batch=batch,
                    label_ids=label_ids,
                    actor=actor,
                    now=now,
                    report=report,
                )
        audit_record(
            actor=actor,
            action="case.import",
            obj=project,
            project=project,
            after={
                "file": report.file,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "new_classes": report.new_classes,
            },
        )
        if on_written is not None:
            on_written()
