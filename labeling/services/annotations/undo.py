"""Undo: pop the newest of an analyst's last UNDO_DEPTH actions, superseding, never deleting.

Undoing a label supersedes it and returns its item to the analyst, in front of everything else
they hold (`front_at`), so their next claim shows that case first. Undoing an edit restores the
label it replaced (as a new copy). Undoing a skip takes the case back if an item of it is open.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from labeling.models import (
    Annotation,
    Case,
    Project,
    QueueAction,
    QueueActionKind,
    QueueItem,
    QueueStatus,
)
from labeling.services.adjudication import tie_adjudication_request
from labeling.services.annotations.review import review_undo_group
from labeling.services.annotations.submit import UNDO_DEPTH, _lock_case
from labeling.services.queue.claim import lease_seconds
from labeling.services.resolution import DECIDING, resolution_recompute
from labeling.services.review_requests import second_opinion_withdraw
from workbench.core.audit import audit_record
from workbench.errors import ApplicationError

ERR_NOTHING_TO_UNDO = f"Nothing to undo: only your last {UNDO_DEPTH} actions can be undone."
ERR_UNDO_NOT_TOP = "That is no longer your last action; reload to see what undo would change."

_COPIED = (
    "label",
    "skipped",
    "skip_reason",
    "noise_flag",
    "ambiguous",
    "exclude",
    "exclude_reason",
    "comment",
    "duration_ms",
)


@dataclass(frozen=True)
class UndoResult:
    """The action undone, the item returned to the analyst (if any) and a restored annotation."""

    action: QueueAction
    case_id: int
    item: QueueItem | None
    restored: Annotation | None


def _hold_in_front(item: QueueItem, *, analyst: Any, now: datetime) -> QueueItem:
    item.status = QueueStatus.CLAIMED
    item.assigned_to = analyst
    item.claimed_at = item.front_at = now
    item.lease_expires_at = now + timedelta(seconds=lease_seconds())
    item.completed_at = None
    item.save(
        update_fields=[
            "status",
            "assigned_to",
            "claimed_at",
            "front_at",
            "lease_expires_at",
            "completed_at",
            "updated_at",
        ]
    )
    return item


def _return_done(item_id: int | None, *, analyst: Any, now: datetime) -> QueueItem | None:
    if item_id is None:
        return None
    item = QueueItem.objects.select_for_update().filter(pk=item_id).first()
    if item is None or item.status != QueueStatus.DONE or item.assigned_to_id != analyst.pk:
        return None
    return _hold_in_front(item, analyst=analyst, now=now)


def _return_skipped(
    case: Case, item_id: int | None, *, analyst: Any, now: datetime
) -> QueueItem | None:
    items = QueueItem.objects.select_for_update().filter(case=case)
    mine = items.filter(assigned_to=analyst, status__in=[QueueStatus.CLAIMED, QueueStatus.DONE])
    if mine.exists():
        return None
    open_items = sorted(
        items.filter(status=QueueStatus.OPEN), key=lambda i: (i.pk != item_id, i.slot)
    )
    # Someone else took the case meanwhile: it simply becomes claimable for this analyst again.
    return _hold_in_front(open_items[0], analyst=analyst, now=now) if open_items else None


def _restore(previous: Annotation, *, now: datetime) -> Annotation:
    """A copy of `previous` as the current annotation (history keeps every row as it was)."""
    copy = Annotation(
        case_id=previous.case_id,
        annotator_id=previous.annotator_id,
        queue_item_id=previous.queue_item_id,
        shown={**previous.shown, "restored_from": previous.pk},
        source=previous.source,
        submission_id=uuid.uuid4(),
        content_hash=previous.content_hash,
        **{name: getattr(previous, name) for name in _COPIED},
    )
    copy.save()
    return copy


def _undo(action: QueueAction, *, analyst: Any, now: datetime) -> UndoResult | None:
    # A group decision's undo writes its members too: lock them all in id order first, as the
    # decision itself did (`review_submit`), so the two never wait on each other in a cycle.
    own = action.annotation.case_id
    members = Annotation.objects.filter(
        group_decision_id=action.annotation_id, superseded_at__isnull=True
    ).values_list("case_id", flat=True)
    for case_id in sorted({own, *members}):
        locked = _lock_case(case_id)
        if case_id == own:
            case = locked
    annotation = Annotation.objects.select_for_update().get(pk=action.annotation_id)
    action.undone_at = now
    action.save(update_fields=["undone_at"])
    if annotation.superseded_at is not None:
        return None  # already replaced by a later action: nothing left to undo here
    annotation.superseded_at = now
    restored = None
    if action.previous_id is not None:
        restored = _restore(Annotation.objects.get(pk=action.previous_id), now=now)
        annotation.superseded_by = restored
        # The earlier action that wrote the replaced label now refers to its restored copy, so
        # undoing it next undoes this label (and not, for lack of one, an older action).
        QueueAction.objects.filter(annotation_id=action.previous_id, undone_at__isnull=True).update(
            annotation=restored
        )
        if restored.skipped:  # the analyst's label of a case they had skipped: skipped again
            QueueItem.objects.filter(case=case, assigned_to=analyst).exclude(
                status=QueueStatus.CANCELLED
            ).update(
                status=QueueStatus.OPEN, assigned_to=None, lease_expires_at=None, front_at=None
            )
    annotation.save(update_fields=["superseded_at", "superseded_by"])
    item = None
    if action.kind == QueueActionKind.SKIP:
        item = _return_skipped(case, annotation.queue_item_id, analyst=analyst, now=now)
    elif restored is None:
        item = _return_done(annotation.queue_item_id, analyst=analyst, now=now)
        Project.objects.filter(pk=case.project_id).update(
            labels_since_training=Greatest(F("labels_since_training") - 1, 0)
        )
    else:
        Project.objects.filter(pk=case.project_id).update(
            labels_since_training=F("labels_since_training") + 1
        )
    if action.kind != QueueActionKind.SKIP:
        # A decision taken back no longer outranks the queue's labels.
        resolved = resolution_recompute(
            case=case, actor=analyst, reconsider=annotation.source in DECIDING
        )
        # Taking a label back can leave the others tied, or its dispute without an author.
        tie_adjudication_request(case=case, annotation=annotation, resolved=resolved)
        if annotation.source not in DECIDING:
            second_opinion_withdraw(case=case, annotation=annotation, now=now)
        if annotation.source in DECIDING:
            review_undo_group(decision=annotation, actor=analyst, now=now)
    audit_record(
        actor=analyst,
        action="annotation.undo",
        obj=annotation,
        project_id=case.project_id,
        before={"kind": action.kind, "label_id": annotation.label_id, "current": True},
        after={
            "current": False,
            "restored_id": restored.pk if restored else None,
            "queue_item_id": item.pk if item else None,
        },
    )
    return UndoResult(action=action, case_id=case.pk, item=item, restored=restored)


def annotation_undo(
    *, project: Project, analyst: Any, action_id: int | None = None, now: datetime | None = None
) -> UndoResult:
    """Undo the analyst's newest action that is not undone yet, within their last UNDO_DEPTH.

    With `action_id` (the action the page showed as undoable) a repeated request is a replay:
    it returns the result without undoing a second action; an action that can no longer be
    undone (its label was replaced meanwhile) is taken off the stack and ERR_UNDO_NOT_TOP raised,
    never an older action undone in its place.
    """
    now = now or timezone.now()
    dead: QueueAction | None = None
    with transaction.atomic():
        stack = list(
            QueueAction.objects.select_for_update(of=("self",))
            .select_related("annotation")
            .filter(project=project, analyst=analyst)
            .order_by("-id")[:UNDO_DEPTH]
        )
        asked = next((a for a in stack if a.pk == action_id), None)
        if asked is not None and asked.undone_at is not None:
            return UndoResult(
                action=asked, case_id=asked.annotation.case_id, item=None, restored=None
            )
        for action in stack:
            if action.undone_at is not None:
                continue
            if action_id is not None and action.pk != action_id:
                raise ApplicationError(ERR_UNDO_NOT_TOP, details={"top": action.pk})
            result = _undo(action, analyst=analyst, now=now)
            if result is not None:
                return result
            if action_id is not None:
                dead = action  # committed as undone, so the reloaded page offers the next one
                break
    if dead is not None:
        raise ApplicationError(ERR_UNDO_NOT_TOP, details={"action": dead.pk})
    raise ApplicationError(ERR_NOTHING_TO_UNDO)
