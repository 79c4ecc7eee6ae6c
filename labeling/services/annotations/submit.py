"""Submitting, skipping and editing: each writes one annotation and everything it implies at once.

One transaction holds the case's row lock and writes the annotation, the item's status, the
recomputed resolution, the project's labels-since-training counter, the undo entry and the audit
event; rolled back, none of them exists. A replayed `submission_id` returns the first annotation.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from labeling import statements as st
from labeling.hooks import model_side
from labeling.models import (
    Annotation,
    AnnotationSource,
    Case,
    LabelClass,
    Project,
    QueueAction,
    QueueActionKind,
    QueueItem,
    QueueStatus,
    Split,
)
from labeling.services.adjudication import evaluation_dispute_request, tie_adjudication_request
from labeling.services.resolution import (
    ResolutionInputs,
    resolution_inputs,
    resolution_recompute,
)
from labeling.services.review_requests import dispute_open, second_opinion_request
from workbench.core import sql
from workbench.core.audit import audit_event
from workbench.core.models import AuditEvent
from workbench.errors import ApplicationError

UNDO_DEPTH = 20  # actions an analyst can undo (and labels they can still edit), per project

ERR_SUBMISSION_REUSED = "This submission id belongs to another analyst's answer."
ERR_NOTHING_GIVEN = "Choose a label, or flag the case as noisy or ambiguous."
ERR_LABEL_NOT_IN_PROJECT = "The label '{label}' is not a class of this project."
ERR_SKIP_DONE = "You already labelled this case: undo or edit the label instead."
ERR_EDIT_NOT_YOURS = "You can only edit your own labels."
ERR_EDIT_NOT_CURRENT = "This label was already replaced; edit the current one."
ERR_EDIT_NOT_RECENT = f"Only your last {UNDO_DEPTH} actions can be edited."


# What a label's writes need of its case; the other fields stay deferred.
_CASE_FIELDS = ("id", "project_id", "content_hash", "given_label_id")


def _replay(submission_id: uuid.UUID, analyst: Any) -> Annotation | None:
    first = Annotation.objects.filter(submission_id=submission_id).first()
    if first is None:
        return None
    if first.annotator_id != analyst.pk:
        raise ApplicationError(ERR_SUBMISSION_REUSED, details={"submission_id": str(submission_id)})
    return first


def _lock_case(case_id: int) -> Case:
    """The case's row, locked for the transaction; only the fields a label's writes read."""
    row = sql.fetch_one(st.lock_case(_CASE_FIELDS), [case_id])
    if row is None:
        raise Case.DoesNotExist(f"No case {case_id}.")
    return sql.load(Case, _CASE_FIELDS, row)


def _check_label(*, case: Case, label: LabelClass | int | None) -> int | None:
    """The label's id once it is known to be a class of the case's project."""
    if label is None:
        return None
    if isinstance(label, LabelClass) and label.project_id == case.project_id:
        return int(label.pk)
    label_id = label.pk if isinstance(label, LabelClass) else label
    found = sql.fetch_one(st.CLASS_OF_PROJECT, [label_id, case.project_id])
    if found is None:
        raise ApplicationError(ERR_LABEL_NOT_IN_PROJECT.format(label=label), details={"label": 1})
    return int(found[0])


def _extra_slot(*, item: QueueItem, analyst: Any, now: datetime) -> QueueItem:
    """A done item of its own for a label whose item went to someone else (late submit)."""
    top = QueueItem.objects.filter(case_id=item.case_id).aggregate(top=Max("slot"))["top"]
    return QueueItem.objects.create(
        project_id=item.project_id,
        case_id=item.case_id,
        slot=(top or 0) + 1,
        kind=item.kind,
        priority=item.priority,
        reason={**item.reason, "late_submit_of": item.pk},
        model_version_id=item.model_version_id,
        suggestion_id=item.suggestion_id,
        suggestion_p=item.suggestion_p,
        alternatives=item.alternatives,
        similar_cases=item.similar_cases,
        random_key=item.random_key,
        status=QueueStatus.DONE,
        assigned_to=analyst,
        claimed_at=now,
        completed_at=now,
    )


def _item_for_label(*, case: Case, analyst: Any, item_id: int | None, now: datetime) -> int | None:
    """The item this analyst's label completes; expects the case's row lock.

    Their own item of the case if they hold or did one (whatever the lease says); else the given
    item if it is open again; else, when someone else took it, a new slot, so both labels count.
    """
    params = {"case": case.pk, "analyst": analyst.pk, "now": sql.db_time(now)}
    finished = sql.fetch_one(st.FINISH_MINE, params)  # the usual case: the item they hold
    if finished is not None:
        return int(finished[0])
    done = sql.fetch_one(st.DONE_MINE.format(lock=sql.row_lock()), params)
    if done is not None or item_id is None:
        return int(done[0]) if done is not None else None
    target = QueueItem.objects.select_for_update().get(pk=item_id)
    if target.status != QueueStatus.OPEN:
        return int(_extra_slot(item=target, analyst=analyst, now=now).pk)
    QueueItem.objects.filter(pk=target.pk).update(
        status=QueueStatus.DONE,
        assigned_to=analyst,
        claimed_at=now,
        completed_at=now,
        lease_expires_at=None,
        front_at=None,
        updated_at=now,
    )
    return int(target.pk)


def record_label(
    *,
    case: Case,
    analyst: Any,
    item_id: int | None,
    previous: list[int],
    fields: dict[str, Any],
    submission_id: uuid.UUID,
    now: datetime,
    kind: str,
    content_hash: str | None = None,
    inputs: ResolutionInputs | None = None,
) -> Annotation:
    """Write a label annotation superseding the annotations `previous`, and all it implies.

    Expects the case's row lock. `content_hash` is the hash of the text the analyst read
    (default: the case's current one); a label of an older text is stored stale: kept, but not
    counted by the resolution. `inputs`: the case's resolution and current annotations if
    already read under the lock (saves the resolution a query).
    """
    annotation = Annotation(
        case_id=case.pk,
        annotator=analyst,
        queue_item_id=item_id,
        submission_id=submission_id,
        content_hash=content_hash or case.content_hash,
        **fields,
    )
    annotation.full_clean(
        exclude=["case", "annotator", "queue_item", "label", "superseded_by"],
        validate_unique=False,
        validate_constraints=False,
    )
    sql.insert(annotation)
    if previous:
        sql.execute(st.supersede(len(previous)), [annotation.pk, sql.db_time(now), *previous])
    after = None
    if inputs is not None:
        current = [a for a in inputs.current if a.pk not in previous] + [annotation]
        after = ResolutionInputs(resolved=inputs.resolved, current=current)
    events: list[AuditEvent] = []
    resolved = resolution_recompute(case=case, actor=analyst, inputs=after, events=events)
    if annotation.source == AnnotationSource.QUEUE:
        # A dispute of the given label asks a reviewer at once, not at the next retrain; on an
        # evaluation case blind, so the decision is its evaluation label (a tie's item, if the
        # label also ties the case, is that decision).
        disputed = dispute_open(case=case, annotation=annotation, resolved=resolved)
        # (the split is read only for a dispute: the label path's few statements stay few)
        if disputed and Case.objects.filter(pk=case.pk, split=Split.EVAL).exists():
            tie_adjudication_request(case=case, annotation=annotation, resolved=resolved)
            evaluation_dispute_request(case=case, annotation=annotation, resolved=resolved)
        else:
            second_opinion_request(case=case, annotation=annotation, resolved=resolved, now=now)
            tie_adjudication_request(case=case, annotation=annotation, resolved=resolved)
    events.append(
        audit_event(
            actor=analyst,
            action=f"annotation.{kind}",
            obj=annotation,
            project_id=case.project_id,
            before={"superseded": previous} if previous else None,
            after={
                "case_id": case.pk,
                "label_id": annotation.label_id,
                "noise_flag": annotation.noise_flag,
                "ambiguous": annotation.ambiguous,
                "queue_item_id": item_id,
            },
        )
    )
    if annotation.content_hash != case.content_hash:
        # Labelled on a text that changed meanwhile: kept (stale), and the case is queued
        # again so the new text gets a label too.
        from labeling.services.queue import queue_cases_again

        project = Project.objects.get(pk=case.project_id)
        queue_cases_again(project=project, case_ids=[case.pk])
    # The last writes go together (one round trip on PostgreSQL); the counter comes last, so
    # the project's row stays locked for the shortest time.
    with sql.batch() as writes:
        writes.insert(
            QueueAction(
                project_id=case.project_id,
                analyst=analyst,
                kind=kind,
                annotation=annotation,
                previous_id=previous[-1] if previous else None,
            )
        )
        writes.insert(*events)
        counted = writes.execute(st.COUNT_LABEL, {"project": case.project_id})
    due = writes.row(counted)
    if due is not None and due[0]:
        # A shortcut only: the minute due-check starts the retrain anyway if this is lost.
        retrain_if_due = model_side().retrain_if_due
        transaction.on_commit(partial(retrain_if_due, project_id=case.project_id))
    return annotation


def _fields(
    *, label_id: int | None, noise_flag: bool, ambiguous: bool, **rest: Any
) -> dict[str, Any]:
    if label_id is None and not (noise_flag or ambiguous):
        raise ApplicationError(ERR_NOTHING_GIVEN)
    return {"label_id": label_id, "noise_flag": noise_flag, "ambiguous": ambiguous, **rest}


def annotation_submit(
    *,
    item_or_case: QueueItem | Case,
    analyst: Any,
    submission_id: uuid.UUID | str,
    label: LabelClass | int | None,
    noise_flag: bool = False,
    ambiguous: bool = False,
    comment: str = "",
    duration_ms: int | None = None,
    shown: dict[str, Any] | None = None,
    source: str = str(AnnotationSource.QUEUE),
    content_hash: str | None = None,
    now: datetime | None = None,
) -> Annotation:
    """Record the analyst's label of the rendered case, exactly once per `submission_id`.

    `content_hash` is the hash of the text the page rendered (default: the case's current text);
    when the text changed since, the label is kept but stale (DESIGN), so the case's resolution
    does not count it. A replay returns the first annotation and changes nothing. A submit after the lease expired
    keeps the label: on the item if it is open again, else on a new slot of the case. A second
    label of the same case by the same analyst supersedes their first (an edit).
    """
    now = now or timezone.now()
    submission_id = uuid.UUID(str(submission_id))
    item = item_or_case if isinstance(item_or_case, QueueItem) else None
    case_id = item.case_id if item is not None else item_or_case.pk
    try:
        with transaction.atomic():
            case = _lock_case(case_id)
            fields = _fields(
                label_id=_check_label(case=case, label=label),
                noise_flag=noise_flag,
                ambiguous=ambiguous,
                comment=comment,
                duration_ms=duration_ms,
                shown=shown or {},
                source=source,
            )
            target = _item_for_label(
                case=case, analyst=analyst, item_id=item.pk if item else None, now=now
            )
            inputs = resolution_inputs(case=case)
            previous = [a.pk for a in inputs.current if a.annotator_id == analyst.pk]
            return record_label(
                case=case,
                analyst=analyst,
                item_id=target,
                previous=previous,
                fields=fields,
                submission_id=submission_id,
                now=now,
                kind=str(QueueActionKind.EDIT if previous else QueueActionKind.LABEL),
                content_hash=content_hash,
                inputs=inputs,
            )
    except IntegrityError:
        # A replay (double click, retry, stale tab): the first answer's unique submission id
        # rolled this one back whole, once it got the case's lock. Return the first.
        existing = _replay(submission_id, analyst)
        if existing is None:
            raise
        return existing
