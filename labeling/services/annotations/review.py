"""Reviewers' decisions on review items (`labeling.services.review_requests` makes the items).

A decision (`review_submit`) is an annotation of source `review` (`adjudication` for adjudication
items) with a verdict: keep the given label, accept the detector's suggestion, another class,
exclude the case from the dataset (with a reason), or ambiguous. Resolution ranks it above any
number of queue labels (`labeling.services.resolution`). Applied to the case's group of
near-duplicates, each member gets its own annotation pointing at the decision
(`group_decision`) and its own resolution; undoing the decision undoes all of them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from labeling import statements as st
from labeling.models import (
    Annotation,
    AnnotationSource,
    Case,
    LabelClass,
    Project,
    QueueActionKind,
    QueueItem,
    QueueKind,
    QueueStatus,
)
from labeling.services.annotations.submit import (
    _check_label,
    _item_for_label,
    _lock_case,
    _replay,
    record_label,
)
from labeling.services.queue.fill import DECISION_KINDS
from labeling.services.resolution import (
    ResolutionInputs,
    group_may_extend_to,
    resolution_inputs,
    resolution_recompute,
)
from workbench.core import sql
from workbench.core.audit import audit_event
from workbench.errors import ApplicationError

ERR_NOT_A_DECISION = "This item is not a review; answer it from the labelling queue."
ERR_NO_GIVEN = "This case has no given label to keep: pick a class instead."
ERR_NO_SUGGESTION = "There is no suggestion to accept: pick a class instead."
ERR_NEED_LABEL = "Pick the class this case belongs to."
ERR_NEED_REASON = (
    "Say why the case leaves the dataset (e.g. not a merchant, duplicate, unreadable)."
)
ERR_REASON_TOO_LONG = "The exclusion reason is at most 200 characters."


class Verdict(StrEnum):
    CONFIRM = "confirm"  # y: the given label is right
    ACCEPT = "accept"  # Enter: the detector's suggestion is right
    RELABEL = "relabel"  # a class key: this class is right
    EXCLUDE = "exclude"  # x: the case leaves the dataset, with a reason
    AMBIGUOUS = "ambiguous"  # a: cannot be decided from what is known


@dataclass(frozen=True)
class ReviewDecision:
    """The reviewer's annotation and the near-duplicate cases the decision was applied to."""

    annotation: Annotation
    members: tuple[int, ...]


def _verdict_fields(
    *, case: Case, item: QueueItem, verdict: Verdict, label: LabelClass | int | None, reason: str
) -> dict[str, Any]:
    if verdict == Verdict.CONFIRM:
        if case.given_label_id is None:
            raise ApplicationError(ERR_NO_GIVEN)
        label_id: int | None = int(case.given_label_id)
    elif verdict == Verdict.ACCEPT:
        if item.suggestion_id is None:
            raise ApplicationError(ERR_NO_SUGGESTION)
        label_id = _check_label(case=case, label=item.suggestion_id)
    elif verdict == Verdict.RELABEL:
        label_id = _check_label(case=case, label=label)
        if label_id is None:
            raise ApplicationError(ERR_NEED_LABEL)
    else:
        label_id = None
    reason = reason.strip()
    if verdict == Verdict.EXCLUDE and not reason:
        raise ApplicationError(ERR_NEED_REASON, details={"exclude_reason": 1})
    if len(reason) > 200:
        raise ApplicationError(ERR_REASON_TOO_LONG, details={"exclude_reason": 1})
    return {
        "label_id": label_id,
        "exclude": verdict == Verdict.EXCLUDE,
        "exclude_reason": reason if verdict == Verdict.EXCLUDE else "",
        "ambiguous": verdict == Verdict.AMBIGUOUS,
        "noise_flag": label_id is not None and label_id != case.given_label_id,
    }


def _members(
    *, case: Case, wanted: list[int], locked: dict[int, Case], source: str
) -> list[tuple[Case, ResolutionInputs]]:
    """The group members a decision may extend to: same project and given label, not decided
    by a review or adjudication already (a decision made on the case itself outweighs one
    extended to it from a near-duplicate)."""
    out = []
    for case_id in wanted:
        member = locked.get(case_id)
        if member is None or member.project_id != case.project_id:
            continue
        if member.given_label_id != case.given_label_id:
            continue
        inputs = resolution_inputs(case=member)
        resolved_source = inputs.resolved.source if inputs.resolved is not None else None
        if not group_may_extend_to(
            resolved_source, adjudication=source == AnnotationSource.ADJUDICATION
        ):
            continue
        out.append((member, inputs))
    return out


def _cancel_open(
    *, case_ids: list[int], keep: int | None, reviewer: Any, now: datetime
) -> list[int]:
    """Cancel the open review and pool items of decided cases, and those the reviewer holds
    (nobody needs to label them again); evaluation items stay, since evaluation labels come
    from evaluation draws only."""
    live = Q(status=QueueStatus.OPEN) | Q(status=QueueStatus.CLAIMED, assigned_to=reviewer)
    items = QueueItem.objects.filter(
        live, case_id__in=case_ids, kind__in=[QueueKind.REVIEW, QueueKind.POOL]
    ).exclude(pk=keep or 0)
    ids = sorted(items.values_list("pk", flat=True))
    if ids:
        QueueItem.objects.filter(pk__in=ids).update(
            status=QueueStatus.CANCELLED, lease_expires_at=None, front_at=None, updated_at=now
        )
    return ids


def _apply_to_member(
    *, member: Case, inputs: ResolutionInputs, decision: Annotation, reviewer: Any, now: datetime
) -> Annotation:
    """The decision's copy on a near-duplicate: its own annotation and resolution."""
    previous = [a.pk for a in inputs.current if a.annotator_id == reviewer.pk]
    copy = Annotation(
        case_id=member.pk,
        annotator=reviewer,
        label_id=decision.label_id,
        exclude=decision.exclude,
        exclude_reason=decision.exclude_reason,
        ambiguous=decision.ambiguous,
        noise_flag=decision.label_id is not None and decision.label_id != member.given_label_id,
        comment=decision.comment,
        source=decision.source,
        group_decision=decision,
        # What it replaced comes back if the decision is undone (`review_undo_group`).
        shown={"group_decision_of_case": decision.case_id, "replaced": previous},
        # Derived from the decision's, so a replayed decision can never write a second copy.
        submission_id=uuid.uuid5(decision.submission_id, str(member.pk)),
        content_hash=member.content_hash,
    )
    sql.insert(copy)
    if previous:
        sql.execute(st.supersede(len(previous)), [copy.pk, sql.db_time(now), *previous])
    current = [a for a in inputs.current if a.pk not in previous] + [copy]
    resolution_recompute(
        case=member,
        actor=reviewer,
        inputs=ResolutionInputs(resolved=inputs.resolved, current=current),
    )
    sql.insert(
        audit_event(
            actor=reviewer,
            action="annotation.group_decision",
            obj=copy,
            project_id=member.project_id,
            after={"case_id": member.pk, "decision_id": decision.pk, "label_id": copy.label_id},
        )
    )
    return copy


def review_submit(
    *,
    item: QueueItem,
    reviewer: Any,
    submission_id: uuid.UUID | str,
    verdict: Verdict | str,
    label: LabelClass | int | None = None,
    exclude_reason: str = "",
    comment: str = "",
    apply_group: bool = False,
    duration_ms: int | None = None,
    shown: dict[str, Any] | None = None,
    content_hash: str | None = None,
    now: datetime | None = None,
) -> ReviewDecision:
    """Record a reviewer's decision on a review (or adjudication) item, once per submission id.

    The decision outranks every queue label of the case. With `apply_group`, it is applied to
    the item's near-duplicates too (those still with the case's given label and not decided by
    a higher source). The decided cases' other open review and pool items are cancelled (an
    undo reopens them). The caller checks the reviewer's role.
    """
    now = now or timezone.now()
    submission_id = uuid.UUID(str(submission_id))
    verdict = Verdict(verdict)
    if item.kind not in DECISION_KINDS:
        raise ApplicationError(ERR_NOT_A_DECISION)
    source = (
        AnnotationSource.ADJUDICATION
        if item.kind == QueueKind.ADJUDICATION
        else AnnotationSource.REVIEW
    )
    wanted = sorted({int(c) for c in item.group or []} - {item.case_id}) if apply_group else []
    try:
        with transaction.atomic():
            # Every case in id order, so two group decisions that share cases cannot deadlock.
            locked: dict[int, Case] = {}
            for case_id in sorted([item.case_id, *wanted]):
                try:
                    locked[case_id] = _lock_case(case_id)
                except Case.DoesNotExist:
                    continue
            case = locked[item.case_id]
            fields = _verdict_fields(
                case=case, item=item, verdict=verdict, label=label, reason=exclude_reason
            )
            members = _members(case=case, wanted=wanted, locked=locked, source=source)
            target = _item_for_label(case=case, analyst=reviewer, item_id=item.pk, now=now)
            decided = [case.pk] + (
                [m.pk for m, _ in members] if verdict != Verdict.AMBIGUOUS else []
            )
            cancelled = _cancel_open(case_ids=decided, keep=target, reviewer=reviewer, now=now)
            fields.update(
                comment=comment,
                duration_ms=duration_ms,
                source=str(source),
                shown={
                    **(shown or {}),
                    "verdict": str(verdict),
                    "group": [m.pk for m, _ in members],
                    "cancelled_items": cancelled,
                },
            )
            inputs = resolution_inputs(case=case)
            previous = [a.pk for a in inputs.current if a.annotator_id == reviewer.pk]
            annotation = record_label(
                case=case,
                analyst=reviewer,
                item_id=target,
                previous=previous,
                fields=fields,
                submission_id=submission_id,
                now=now,
                kind=str(QueueActionKind.EDIT if previous else QueueActionKind.LABEL),
                content_hash=content_hash,
                inputs=inputs,
            )
            for member, member_inputs in members:
                _apply_to_member(
                    member=member,
                    inputs=member_inputs,
                    decision=annotation,
                    reviewer=reviewer,
                    now=now,
                )
            if members:
                Project.objects.filter(pk=case.project_id).update(
                    labels_since_training=F("labels_since_training") + len(members)
                )
            return ReviewDecision(annotation=annotation, members=tuple(m.pk for m, _ in members))
    except IntegrityError:
        existing = _replay(submission_id, reviewer)
        if existing is None:
            raise
        group = existing.shown.get("group") if isinstance(existing.shown, dict) else None
        return ReviewDecision(annotation=existing, members=tuple(int(c) for c in group or []))


def review_undo_group(*, decision: Annotation, actor: Any, now: datetime) -> list[int]:
    """Take back what a decision did beyond its own case (its undo calls this): supersede the
    members' copies, recompute their resolutions, and reopen the items it cancelled. Returns
    the member case ids reverted."""
    reverted = []
    copies = Annotation.objects.filter(group_decision=decision, superseded_at__isnull=True)
    for copy in copies.order_by("case_id"):
        member = _lock_case(copy.case_id)
        Annotation.objects.filter(pk=copy.pk).update(superseded_at=now)
        replaced = copy.shown.get("replaced") if isinstance(copy.shown, dict) else None
        if replaced:  # the reviewer's own earlier answer on the member is current again
            Annotation.objects.filter(pk__in=replaced, superseded_by=copy).update(
                superseded_at=None, superseded_by=None
            )
        resolution_recompute(case=member, actor=actor, reconsider=True)
        reverted.append(member.pk)
    if reverted:
        Project.objects.filter(pk=decision.case.project_id).update(
            labels_since_training=Greatest(F("labels_since_training") - len(reverted), 0)
        )
    shown = decision.shown if isinstance(decision.shown, dict) else {}
    for item_id in shown.get("cancelled_items") or []:
        item = QueueItem.objects.filter(pk=item_id, status=QueueStatus.CANCELLED).first()
        if item is None:
            continue
        # Reopen unless its slot was reused, or (a review item) the case has a live one: a case
        # wants one review at a time, but every overlap slot of its labels.
        live = QueueItem.objects.filter(case_id=item.case_id).exclude(status=QueueStatus.CANCELLED)
        if live.filter(slot=item.slot).exists() or (
            item.kind == QueueKind.REVIEW
            and live.filter(
                kind=item.kind, status__in=[QueueStatus.OPEN, QueueStatus.CLAIMED]
            ).exists()
        ):
            continue
        QueueItem.objects.filter(pk=item.pk).update(
            status=QueueStatus.OPEN,
            assigned_to=None,
            claimed_at=None,
            lease_expires_at=None,
            updated_at=now,
        )
    return reverted
