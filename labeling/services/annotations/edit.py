"""Editing one's own recent label: a new annotation superseding it, with all a submit implies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from labeling.models import Annotation, LabelClass, QueueAction, QueueActionKind
from labeling.services.annotations.submit import (
    ERR_EDIT_NOT_CURRENT,
    ERR_EDIT_NOT_RECENT,
    ERR_EDIT_NOT_YOURS,
    UNDO_DEPTH,
    _check_label,
    _fields,
    _lock_case,
    _replay,
    record_label,
)
from workbench.errors import ApplicationError


def annotation_edit(
    *,
    annotation: Annotation,
    analyst: Any,
    submission_id: uuid.UUID | str,
    label: LabelClass | int | None,
    noise_flag: bool = False,
    ambiguous: bool = False,
    comment: str = "",
    duration_ms: int | None = None,
    shown: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Annotation:
    """Replace one of the analyst's recent current labels by a new annotation superseding it."""
    now = now or timezone.now()
    submission_id = uuid.UUID(str(submission_id))
    existing = _replay(submission_id, analyst)
    if existing is not None:
        return existing
    with transaction.atomic():
        case = _lock_case(annotation.case_id)
        existing = _replay(submission_id, analyst)
        if existing is not None:
            return existing
        old = Annotation.objects.select_for_update().get(pk=annotation.pk)
        if old.annotator_id != analyst.pk:
            raise ApplicationError(ERR_EDIT_NOT_YOURS)
        if old.superseded_at is not None or old.skipped:
            raise ApplicationError(ERR_EDIT_NOT_CURRENT)
        recent = QueueAction.objects.filter(project_id=case.project_id, analyst=analyst).order_by(
            "-id"
        )[:UNDO_DEPTH]
        if not any(a.annotation_id == old.pk for a in recent):
            raise ApplicationError(ERR_EDIT_NOT_RECENT)
        fields = _fields(
            label_id=_check_label(case=case, label=label),
            noise_flag=noise_flag,
            ambiguous=ambiguous,
            comment=comment,
            duration_ms=duration_ms,
            shown=shown or old.shown,
            source=old.source,
        )
        return record_label(
            case=case,
            analyst=analyst,
            item_id=old.queue_item_id,
            previous=[old.pk],
            fields=fields,
            submission_id=submission_id,
            now=now,
            kind=str(QueueActionKind.EDIT),
        )
