"""Submits are idempotent and atomic, late labels are kept, skips and undos never lose history."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from labeling.models import (
    Annotation,
    Project,
    QueueAction,
    QueueItem,
    QueueStatus,
    ResolutionSource,
    ResolvedLabel,
)
from labeling.selectors import queue_undo_stack
from labeling.services.annotations import (
    ERR_EDIT_NOT_YOURS,
    ERR_LABEL_NOT_IN_PROJECT,
    ERR_NOTHING_GIVEN,
    ERR_NOTHING_TO_UNDO,
    ERR_SUBMISSION_REUSED,
    ERR_UNDO_NOT_TOP,
    UNDO_DEPTH,
    annotation_edit,
    annotation_skip,
    annotation_submit,
    annotation_undo,
)
from labeling.services.queue import lease_seconds, queue_claim_next
from tests.factories import AnalystFactory, LabelClassFactory, queued_items
from workbench.core.models import AuditEvent
from workbench.errors import ApplicationError

pytestmark = pytest.mark.django_db


@pytest.fixture
def labels(project):
    return [LabelClassFactory(project=project) for _ in range(3)]


def _submit(item, analyst, label, **kwargs):
    kwargs.setdefault("submission_id", uuid.uuid4())
    return annotation_submit(item_or_case=item, analyst=analyst, label=label, **kwargs)


def _counts() -> tuple[int, int, int, int]:
    return (
        Annotation.objects.count(),
        AuditEvent.objects.count(),
        ResolvedLabel.objects.count(),
        QueueAction.objects.count(),
    )


def test_a_submit_writes_label_item_resolution_counter_and_audit(project, labels) -> None:
    """One submit completes the item, resolves the case, bumps the counter and is audited."""
    queued_items(project, 1)
    analyst = AnalystFactory()
    item = queue_claim_next(project=project, analyst=analyst).current
    annotation = _submit(item, analyst, labels[0], comment="looks fine", duration_ms=1200)
    item.refresh_from_db()
    assert item.status == QueueStatus.DONE and item.assigned_to == analyst
    assert annotation.queue_item == item
    assert annotation.content_hash == item.case.content_hash
    resolved = ResolvedLabel.objects.get(case=item.case)
    assert (resolved.label, resolved.source) == (labels[0], ResolutionSource.ANNOTATION)
    assert Project.objects.get(pk=project.pk).labels_since_training == 1
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"annotation.label", "resolution.change"} <= actions


def test_a_replayed_submission_id_changes_nothing(project, labels) -> None:
    """A double click, retry or stale tab with the same submission id never doubles a label."""
    (item,) = queued_items(project, 1)
    analyst = AnalystFactory()
    sid = uuid.uuid4()
    first = _submit(item, analyst, labels[0], submission_id=sid)
    before = (_counts(), Project.objects.get(pk=project.pk).labels_since_training)
    again = _submit(item, analyst, labels[1], submission_id=str(sid))
    assert again.pk == first.pk and again.label == labels[0]
    assert (_counts(), Project.objects.get(pk=project.pk).labels_since_training) == before
    with pytest.raises(ApplicationError, match=ERR_SUBMISSION_REUSED):
        _submit(item, AnalystFactory(), labels[0], submission_id=sid)


def test_label_counter_resolution_and_audit_share_the_labels_transaction(project, labels) -> None:
    """Rolled back, the submit leaves no annotation, counter, resolution, audit event or item."""
    (item,) = queued_items(project, 1)
    before = _counts()
    with pytest.raises(RuntimeError), transaction.atomic():
        _submit(item, AnalystFactory(), labels[0])
        raise RuntimeError("rollback")
    assert _counts() == before
    assert Project.objects.get(pk=project.pk).labels_since_training == 0
    item.refresh_from_db()
    assert item.status == QueueStatus.OPEN


def test_a_late_submit_is_kept_when_the_item_went_back_to_the_queue(project, labels) -> None:
    """After the lease expired and the item reopened, the label still completes it."""
    (item,) = queued_items(project, 1)
    analyst = AnalystFactory()
    now = timezone.now()
    queue_claim_next(project=project, analyst=analyst, now=now)
    QueueItem.objects.filter(pk=item.pk).update(
        status=QueueStatus.OPEN, assigned_to=None, lease_expires_at=None
    )
    annotation = _submit(item, analyst, labels[0])
    item.refresh_from_db()
    assert (item.status, item.assigned_to, annotation.queue_item) == ("done", analyst, item)


def test_a_late_submit_is_kept_when_another_analyst_took_the_item(project, labels) -> None:
    """Both labels count: the late one gets its own slot and the other analyst's item stays."""
    (item,) = queued_items(project, 1)
    late, other = AnalystFactory(), AnalystFactory()
    now = timezone.now()
    queue_claim_next(project=project, analyst=late, now=now)
    after_expiry = now + timedelta(seconds=lease_seconds() + 1)
    assert queue_claim_next(project=project, analyst=other, now=after_expiry).current == item
    late_label = _submit(item, late, labels[0])
    other_label = _submit(item, other, labels[0])
    extra = late_label.queue_item
    assert extra != item and extra.slot == 1 and extra.assigned_to == late
    assert other_label.queue_item == item
    assert QueueItem.objects.filter(case=item.case, status="done").count() == 2
    assert ResolvedLabel.objects.get(case=item.case).agreement == 1.0


def test_a_second_label_of_the_same_case_by_the_same_analyst_supersedes_the_first(
    project, labels
) -> None:
    """A stale tab with a new submission id acts as an edit: one current label per analyst."""
    (item,) = queued_items(project, 1)
    analyst = AnalystFactory()
    first = _submit(item, analyst, labels[0])
    second = _submit(item, analyst, labels[1])
    first.refresh_from_db()
    assert first.superseded_by == second and first.superseded_at is not None
    assert ResolvedLabel.objects.get(case=item.case).label == labels[1]


def test_submit_validates_its_input(project, labels) -> None:
    """An empty answer or another project's class is refused with a message."""
    (item,) = queued_items(project, 1)
    with pytest.raises(ApplicationError, match=ERR_NOTHING_GIVEN):
        _submit(item, AnalystFactory(), None)
    foreign = LabelClassFactory()
    with pytest.raises(ApplicationError) as exc:
        _submit(item, AnalystFactory(), foreign)
    assert exc.value.message == ERR_LABEL_NOT_IN_PROJECT.format(label=foreign)


def test_a_flag_without_a_label_gives_no_resolution_and_a_doubtful_given_label(
    project, labels
) -> None:
    """A noise flag without a label leaves the case unresolved and its given label doubtful."""
    (item,) = queued_items(project, 1)
    item.case.given_label = labels[0]
    item.case.save()
    _submit(item, AnalystFactory(), None, noise_flag=True)
    resolved = ResolvedLabel.objects.get(case=item.case)
    assert resolved.label is None and resolved.doubtful


def test_a_skip_passes_the_item_on_and_never_returns_it(project, labels) -> None:
    """A skipped item goes back to the open queue for others, never to the one who skipped."""
    (item,) = queued_items(project, 1)
    skipper, other = AnalystFactory(), AnalystFactory()
    assert queue_claim_next(project=project, analyst=skipper).current == item
    skip = annotation_skip(item=item, analyst=skipper, submission_id=uuid.uuid4(), reason="unsure")
    assert skip.skipped and skip.label is None and skip.skip_reason == "unsure"
    item.refresh_from_db()
    assert item.status == QueueStatus.OPEN and item.assigned_to is None
    assert queue_claim_next(project=project, analyst=skipper).current is None
    assert queue_claim_next(project=project, analyst=other).current == item


def test_undo_supersedes_restores_the_resolution_and_puts_the_case_in_front(
    project, labels
) -> None:
    """Undo keeps the annotation as history, restores the state and serves the case first."""
    queued_items(project, 4, priorities=[4, 3, 2, 1])
    analyst = AnalystFactory()
    first = queue_claim_next(project=project, analyst=analyst)
    case = first.current.case
    resolution_before = ResolvedLabel.objects.filter(case=case).first()
    annotation = _submit(first.current, analyst, labels[0])
    assert queue_claim_next(project=project, analyst=analyst).current == first.next

    result = annotation_undo(project=project, analyst=analyst)
    annotation.refresh_from_db()
    assert annotation.superseded_at is not None  # kept, not deleted
    assert result.item == first.current and result.case_id == case.pk
    assert resolution_before is None
    resolved = ResolvedLabel.objects.get(case=case)
    assert (resolved.label, resolved.source) == (None, ResolutionSource.GIVEN)
    assert Project.objects.get(pk=project.pk).labels_since_training == 0
    again = queue_claim_next(project=project, analyst=analyst)
    assert (again.current, again.next) == (first.current, first.next)
    relabel = _submit(again.current, analyst, labels[1])
    assert ResolvedLabel.objects.get(case=case).label == labels[1]
    assert Annotation.objects.filter(case=case).count() == 2 and relabel.superseded_at is None


def test_undo_of_an_edit_restores_the_previous_label(project, labels) -> None:
    """Undoing an edit brings back the label it replaced, as a new current annotation."""
    (item,) = queued_items(project, 1)
    analyst = AnalystFactory()
    original = _submit(item, analyst, labels[0])
    edited = annotation_edit(
        annotation=original, analyst=analyst, submission_id=uuid.uuid4(), label=labels[2]
    )
    assert ResolvedLabel.objects.get(case=item.case).label == labels[2]
    result = annotation_undo(project=project, analyst=analyst)
    assert result.restored.label == labels[0] and result.restored.superseded_at is None
    edited.refresh_from_db()
    assert edited.superseded_by == result.restored
    assert ResolvedLabel.objects.get(case=item.case).label == labels[0]
    assert Annotation.objects.filter(case=item.case).count() == 3


def test_undo_of_a_skip_takes_the_case_back(project, labels) -> None:
    """After undoing a skip the case is the analyst's again, in front."""
    (item,) = queued_items(project, 1)
    analyst = AnalystFactory()
    queue_claim_next(project=project, analyst=analyst)
    annotation_skip(item=item, analyst=analyst, submission_id=uuid.uuid4())
    assert annotation_undo(project=project, analyst=analyst).item == item
    assert queue_claim_next(project=project, analyst=analyst).current == item


def test_undo_reaches_back_twenty_actions_and_no_further(project, labels) -> None:
    """The undo stack holds an analyst's last 20 actions."""
    items = queued_items(project, UNDO_DEPTH + 2)
    analyst = AnalystFactory()
    for item in items:
        _submit(item, analyst, labels[0])
    assert len(queue_undo_stack(project=project, analyst=analyst)) == UNDO_DEPTH
    for _ in range(UNDO_DEPTH):
        annotation_undo(project=project, analyst=analyst)
    with pytest.raises(ApplicationError, match=ERR_NOTHING_TO_UNDO):
        annotation_undo(project=project, analyst=analyst)
    current = Annotation.objects.filter(superseded_at__isnull=True)
    assert current.count() == 2 and Annotation.objects.count() == UNDO_DEPTH + 2


def test_undo_with_the_shown_action_id_is_idempotent(project, labels) -> None:
    """Pressing undo twice for the same shown action undoes one action only."""
    first, second = queued_items(project, 2)
    analyst = AnalystFactory()
    _submit(first, analyst, labels[0])
    _submit(second, analyst, labels[0])
    top = queue_undo_stack(project=project, analyst=analyst)[0]
    annotation_undo(project=project, analyst=analyst, action_id=top.pk)
    annotation_undo(project=project, analyst=analyst, action_id=top.pk)
    assert Annotation.objects.filter(superseded_at__isnull=True).count() == 1
    with pytest.raises(ApplicationError, match=ERR_UNDO_NOT_TOP):
        annotation_undo(project=project, analyst=analyst, action_id=top.pk + 999)


def test_undo_after_undoing_an_edit_undoes_the_restored_label_not_an_older_action(
    project, labels
) -> None:
    """Label Y, label X, edit X, undo, undo: X's label goes, Y's label stays."""
    other, item = queued_items(project, 2)
    analyst = AnalystFactory()
    other_label = _submit(other, analyst, labels[0])
    original = _submit(item, analyst, labels[0])
    annotation_edit(
        annotation=original, analyst=analyst, submission_id=uuid.uuid4(), label=labels[1]
    )
    restored = annotation_undo(project=project, analyst=analyst).restored
    top = queue_undo_stack(project=project, analyst=analyst)[0]
    assert top.annotation == restored and top.annotation.case == item.case
    result = annotation_undo(project=project, analyst=analyst, action_id=top.pk)
    assert result.case_id == item.case_id
    restored.refresh_from_db()
    other_label.refresh_from_db()
    assert restored.superseded_at is not None
    assert other_label.superseded_at is None
    assert ResolvedLabel.objects.get(case=other.case).label == labels[0]
    assert not Annotation.objects.filter(case=item.case, superseded_at__isnull=True).exists()


def test_undo_of_a_shown_action_that_cannot_be_undone_touches_no_older_action(
    project, labels
) -> None:
    """When the action the page showed was already replaced, undo stops instead of going on."""
    other, item = queued_items(project, 2)
    analyst = AnalystFactory()
    other_label = _submit(other, analyst, labels[0])
    first = _submit(item, analyst, labels[0])
    shown = QueueAction.objects.get(annotation=first)
    # Superseded outside the undo stack (no action of the analyst refers to the new row).
    Annotation.objects.filter(pk=first.pk).update(superseded_at=timezone.now())
    with pytest.raises(ApplicationError, match=ERR_UNDO_NOT_TOP):
        annotation_undo(project=project, analyst=analyst, action_id=shown.pk)
    other_label.refresh_from_db()
    assert other_label.superseded_at is None
    # The dead action is off the stack now: the page offers the older one next.
    assert queue_undo_stack(project=project, analyst=analyst)[0].annotation == other_label


def test_a_label_made_on_an_older_text_is_stored_stale(project, labels) -> None:
    """The annotation records the hash of the text the analyst read, not the one at submit."""
    (item,) = queued_items(project, 1)
    case = item.case
    case.given_label = labels[2]
    case.save()
    rendered = case.content_hash
    case.text, case.content_hash = "A new text", "f" * 64
    case.save()
    analyst = AnalystFactory()
    annotation = _submit(item, analyst, labels[0], content_hash=rendered)
    assert annotation.content_hash == rendered and annotation.superseded_at is None
    resolved = ResolvedLabel.objects.get(case=case)
    assert (resolved.label, resolved.source) == (labels[2], ResolutionSource.GIVEN)
    # Without a rendered hash (other callers) the case's current text is assumed.
    other = _submit(case, AnalystFactory(), labels[1])
    assert other.content_hash == case.content_hash
    assert ResolvedLabel.objects.get(case=case).label == labels[1]


def test_only_ones_own_labels_can_be_edited(project, labels) -> None:
    """Editing someone else's label is refused."""
    (item,) = queued_items(project, 1)
    annotation = _submit(item, AnalystFactory(), labels[0])
    with pytest.raises(ApplicationError, match=ERR_EDIT_NOT_YOURS):
        annotation_edit(
            annotation=annotation, analyst=AnalystFactory(), submission_id=uuid.uuid4(), label=None
        )


def test_a_stale_submit_queues_the_case_again_for_its_new_text() -> None:
    """An analyst held a case while its text changed: their label is kept (stale) and the case
    gets a fresh item that they may claim again."""
    from labeling.models import QueueItem, QueueStatus
    from labeling.services.queue import queue_claim_next
    from tests.factories import AnalystFactory, CaseFactory, LabelClassFactory, QueueItemFactory

    case = CaseFactory()
    label = LabelClassFactory(project=case.project)
    QueueItemFactory(case=case)
    analyst = AnalystFactory()
    item = queue_claim_next(project=case.project, analyst=analyst).current
    rendered = case.content_hash
    case.text, case.content_hash = "A new description.", "f" * 64  # an import changed it
    case.save()
    annotation = annotation_submit(
        item_or_case=item, analyst=analyst, submission_id=uuid.uuid4(), label=label,
        content_hash=rendered,
    )  # fmt: skip
    assert annotation.content_hash == rendered
    assert QueueItem.objects.filter(case=case, status=QueueStatus.OPEN).count() == 1
    again = queue_claim_next(project=case.project, analyst=analyst).current
    assert again is not None and again.case_id == case.pk
