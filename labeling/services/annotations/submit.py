"""Submitting, skipping and editing: each writes one annotation and everything it implies at once.

One transaction holds the case's row lock and writes the annotation, the item's status, the
recomputed resolution, the project's labels-since-training counter, the undo entry and the audit
event; rolled back, none of them exists. A replayed `submission_id` returns the first annotation.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

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
)
from labeling.services.audit import audit_record
from labeling.services.resolution import resolution_recompute
from workbench.errors import ApplicationError

UNDO_DEPTH = 20  # actions an analyst can undo (and labels they can still edit), per project

ERR_SUBMISSION_REUSED = "This submission id belongs to another analyst's answer."
ERR_NOTHING_GIVEN = "Choose a label, or flag the case as noisy or ambiguous."
ERR_LABEL_NOT_IN_PROJECT = "The label '{label}' is not a class of this project."
ERR_SKIP_DONE = "You already labelled this case: undo or edit the label instead."
ERR_EDIT_NOT_YOURS = "You can only edit your own labels."
ERR_EDIT_NOT_CURRENT = "This label was already replaced; edit the current one."
ERR_EDIT_NOT_RECENT = f"Only your last {UNDO_DEPTH} actions can be edited."


def _replay(submission_id: uuid.UUID, analyst: Any) -> Annotation | None:
    existing = Annotation.objects.filter(submission_id=submission_id).first()
    if existing is not None and existing.annotator_id != analyst.pk:
        raise ApplicationError(ERR_SUBMISSION_REUSED, details={"submission_id": str(submission_id)})
    return existing


def _lock_case(case_id: int) -> Case:
    return Case.objects.select_for_update(of=("self",)).select_related("project").get(pk=case_id)


def _check_label(*, case: Case, label: LabelClass | int | None) -> LabelClass | None:
    if label is None:
        return None
    if isinstance(label, LabelClass) and label.project_id == case.project_id:
        return label
    label_id = label.pk if isinstance(label, LabelClass) else label
    found = LabelClass.objects.filter(pk=label_id, project_id=case.project_id).first()
    if found is None:
        raise ApplicationError(ERR_LABEL_NOT_IN_PROJECT.format(label=label), details={"label": 1})
    return found


def _extra_slot(*, item: QueueItem, analyst: Any, now: datetime) -> QueueItem:
    """A done item of its own for a label whose item went to someone else (late submit)."""
    top = QueueItem.objects.filter(case_id=item.case_id).aggregate(top=Max("slot"))["top"]
    return QueueItem.objects.create(
        project_id=item.project_id,
        case_id=item.case_id,
        slot=(top or 0) + 1,
        is_evaluation=item.is_evaluation,
        priority=item.priority,
        reason={**item.reason, "late_submit_of": item.pk},
        model_version_id=item.model_version_id,
        similar_cases=item.similar_cases,
        random_key=item.random_key,
        status=QueueStatus.DONE,
        assigned_to=analyst,
        claimed_at=now,
        completed_at=now,
    )


def _item_for_label(
    *, case: Case, analyst: Any, item: QueueItem | None, now: datetime
) -> QueueItem | None:
    """The item this analyst's label completes; expects the case's row lock.

    Their own item of the case if they hold or did one (whatever the lease says); else the given
    item if it is open again; else, when someone else took it, a new slot, so both labels count.
    """
    mine = (
        QueueItem.objects.select_for_update()
        .filter(case=case, assigned_to=analyst, status__in=[QueueStatus.CLAIMED, QueueStatus.DONE])
        .first()
    )
    if mine is not None or item is None:
        target = mine
    else:
        target = QueueItem.objects.select_for_update().get(pk=item.pk)
        if target.status != QueueStatus.OPEN:
            return _extra_slot(item=target, analyst=analyst, now=now)
        target.claimed_at = now
    if target is not None and target.status != QueueStatus.DONE:
        target.status = QueueStatus.DONE
        target.assigned_to = analyst
        target.completed_at = now
        target.lease_expires_at = None
        target.front_at = None
        target.save(
            update_fields=[
                "status",
                "assigned_to",
                "claimed_at",
                "completed_at",
                "lease_expires_at",
                "front_at",
                "updated_at",
            ]
        )
    return target


def _current_of(*, case: Case, analyst: Any) -> list[Annotation]:
    return list(
        Annotation.objects.select_for_update().filter(
            case=case, annotator=analyst, superseded_at__isnull=True
        )
    )


def record_label(
    *,
    case: Case,
    analyst: Any,
    item: QueueItem | None,
    previous: list[Annotation],
    fields: dict[str, Any],
    submission_id: uuid.UUID,
    now: datetime,
    kind: str,
    content_hash: str | None = None,
) -> Annotation:
    """Write a label annotation superseding `previous`, and all it implies; expects the case lock.

    `content_hash` is the hash of the text the analyst read (default: the case's current one); a
    label of an older text is stored stale: kept, but not counted by the resolution.
    """
    annotation = Annotation(
        case=case,
        annotator=analyst,
        queue_item=item,
        submission_id=submission_id,
        content_hash=content_hash or case.content_hash,
        **fields,
    )
    annotation.full_clean(
        exclude=["case", "annotator", "queue_item", "label", "superseded_by"],
        validate_unique=False,
        validate_constraints=False,
    )
    annotation.save()
    if previous:
        Annotation.objects.filter(pk__in=[p.pk for p in previous]).update(
            superseded_by=annotation, superseded_at=now
        )
    resolution_recompute(case=case, actor=analyst)
    Project.objects.filter(pk=case.project_id).update(
        labels_since_training=F("labels_since_training") + 1
    )
    # A shortcut only: the minute due-check starts the retrain anyway if this is lost.
    transaction.on_commit(lambda: _retrain_if_due(case.project_id))
    QueueAction.objects.create(
        project_id=case.project_id,
        analyst=analyst,
        kind=kind,
        annotation=annotation,
        previous=previous[0] if previous else None,
    )
    audit_record(
        actor=analyst,
        action=f"annotation.{kind}",
        obj=annotation,
        project=case.project,
        before={"superseded": [p.pk for p in previous]} if previous else None,
        after={
            "case_id": case.pk,
            "label_id": annotation.label_id,
            "noise_flag": annotation.noise_flag,
            "ambiguous": annotation.ambiguous,
            "queue_item_id": item.pk if item else None,
        },
    )
    if annotation.content_hash != case.content_hash:
        # Labelled on a text that changed meanwhile: kept (stale), and the case is queued
        # again so the new text gets a label too.
        from labeling.services.queue import queue_cases_again

        queue_cases_again(project=case.project, case_ids=[case.pk])
    return annotation


def _retrain_if_due(project_id: int) -> None:
    from active_learning.services.retrain_requests import retrain_if_due

    retrain_if_due(project_id=project_id)


def _fields(*, label: LabelClass | None, noise_flag: bool, ambiguous: bool, **rest: Any) -> dict:
    if label is None and not (noise_flag or ambiguous):
        raise ApplicationError(ERR_NOTHING_GIVEN)
    return {"label": label, "noise_flag": noise_flag, "ambiguous": ambiguous, **rest}


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
    with transaction.atomic():
        case = _lock_case(case_id)
        # Checked once, under the case's lock (a double click waits for the first to commit).
        existing = _replay(submission_id, analyst)
        if existing is not None:
            return existing
        fields = _fields(
            label=_check_label(case=case, label=label),
            noise_flag=noise_flag,
            ambiguous=ambiguous,
            comment=comment,
            duration_ms=duration_ms,
            shown=shown or {},
            source=source,
        )
        target = _item_for_label(case=case, analyst=analyst, item=item, now=now)
        previous = _current_of(case=case, analyst=analyst)
        return record_label(
            case=case,
            analyst=analyst,
            item=target,
            previous=previous,
            fields=fields,
            submission_id=submission_id,
            now=now,
            kind=str(QueueActionKind.EDIT if previous else QueueActionKind.LABEL),
            content_hash=content_hash,
        )
