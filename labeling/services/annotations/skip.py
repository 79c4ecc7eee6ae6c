"""Skipping: the item goes back to the open queue and the analyst never gets the case again."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from labeling.models import Annotation, QueueAction, QueueActionKind, QueueItem, QueueStatus
from labeling.services.annotations.submit import ERR_SKIP_DONE, _lock_case, _replay
from workbench.core.audit import audit_record
from workbench.errors import ApplicationError


def annotation_skip(
    *,
    item: QueueItem,
    analyst: Any,
    submission_id: uuid.UUID | str,
    reason: str = "",
    now: datetime | None = None,
) -> Annotation:
    """Pass the item on: it returns to the open queue and this analyst never gets the case again.

    Recorded as an annotation with `skipped=True` and no label (undoable); idempotent.
    """
    now = now or timezone.now()
    submission_id = uuid.UUID(str(submission_id))
    existing = _replay(submission_id, analyst)
    if existing is not None:
        return existing
    with transaction.atomic():
        case = _lock_case(item.case_id)
        existing = _replay(submission_id, analyst)
        if existing is not None:
            return existing
        locked = QueueItem.objects.select_for_update().get(pk=item.pk)
        if locked.status == QueueStatus.DONE and locked.assigned_to_id == analyst.pk:
            raise ApplicationError(ERR_SKIP_DONE)
        annotation = Annotation.objects.create(
            case=case,
            annotator=analyst,
            queue_item=locked,
            skipped=True,
            skip_reason=reason[:500],
            submission_id=submission_id,
            content_hash=case.content_hash,
        )
        if locked.status == QueueStatus.CLAIMED and locked.assigned_to_id == analyst.pk:
            QueueItem.objects.filter(pk=locked.pk).update(
                status=QueueStatus.OPEN,
                assigned_to=None,
                lease_expires_at=None,
                claimed_at=None,
                front_at=None,
                updated_at=now,
            )
        QueueAction.objects.create(
            project_id=case.project_id,
            analyst=analyst,
            kind=QueueActionKind.SKIP,
            annotation=annotation,
        )
        audit_record(
            actor=analyst,
            action="annotation.skip",
            obj=annotation,
            project_id=case.project_id,
            after={"case_id": case.pk, "queue_item_id": locked.pk, "reason": reason[:500]},
        )
        return annotation
