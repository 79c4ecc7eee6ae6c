"""Database constraints reject what DESIGN forbids, whatever code path writes the row."""

from __future__ import annotations

import uuid

import pytest
from django.db import DataError, IntegrityError, transaction

from labeling.models import RESERVED_KEYS, QueueItem, QueueStatus
from tests.factories import (
    AnnotationFactory,
    CaseFactory,
    LabelClassFactory,
    ProjectFactory,
    QueueItemFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _rejects(make) -> None:
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        make()


def test_external_id_is_unique_per_project() -> None:
    case = CaseFactory(external_id="M1")
    _rejects(lambda: CaseFactory(project=case.project, external_id="M1"))
    CaseFactory(external_id="M1")  # another project may reuse it


def test_submission_id_is_unique() -> None:
    sid = uuid.uuid4()
    AnnotationFactory(submission_id=sid)
    _rejects(lambda: AnnotationFactory(submission_id=sid))


@pytest.mark.parametrize("key", [k for k in RESERVED_KEYS if len(k) == 1])
def test_reserved_shortcut_key_is_rejected(key: str) -> None:
    _rejects(lambda: LabelClassFactory(shortcut_key=key))


@pytest.mark.parametrize("key", ["", "Enter", "A", "!", "12"])
def test_shortcut_key_must_be_one_digit_or_lowercase_letter(key: str) -> None:
    _rejects(lambda: LabelClassFactory(shortcut_key=key))


def test_shortcut_key_is_unique_per_project() -> None:
    label = LabelClassFactory(shortcut_key="1")
    _rejects(lambda: LabelClassFactory(project=label.project, shortcut_key="1"))
    LabelClassFactory(shortcut_key="1")


def test_one_analyst_never_holds_two_items_of_one_case() -> None:
    analyst = UserFactory()
    item = QueueItemFactory(slot=0, status=QueueStatus.CLAIMED, assigned_to=analyst)
    _rejects(
        lambda: QueueItemFactory(
            case=item.case, slot=1, status=QueueStatus.CLAIMED, assigned_to=analyst
        )
    )
    # ...nor label one and hold another
    item.status = QueueStatus.DONE
    item.save()
    _rejects(
        lambda: QueueItemFactory(
            case=item.case, slot=1, status=QueueStatus.CLAIMED, assigned_to=analyst
        )
    )
    # a second analyst may take the second slot
    QueueItemFactory(case=item.case, slot=1, status=QueueStatus.CLAIMED, assigned_to=UserFactory())


def test_a_slot_of_a_case_exists_once_unless_cancelled() -> None:
    item = QueueItemFactory(slot=0)
    _rejects(lambda: QueueItemFactory(case=item.case, slot=0))
    QueueItem.objects.filter(pk=item.pk).update(status=QueueStatus.CANCELLED)
    QueueItemFactory(case=item.case, slot=0)


def test_claimed_item_needs_an_assignee() -> None:
    _rejects(lambda: QueueItemFactory(status=QueueStatus.CLAIMED, assigned_to=None))


@pytest.mark.parametrize(
    ("factory", "field", "value"),
    [
        (LabelClassFactory, "tier", "banned"),
        (CaseFactory, "split", "train"),
        (QueueItemFactory, "status", "lost"),
        (ProjectFactory, "strategy", "magic"),
        (AnnotationFactory, "source", "email"),
    ],
)
def test_enum_values_are_checked(factory, field: str, value: str) -> None:
    _rejects(lambda: factory(**{field: value}))


@pytest.mark.parametrize("field", ["evaluation_fraction", "given_label_weight", "target_precision"])
def test_project_fractions_stay_in_unit_interval(field: str) -> None:
    _rejects(lambda: ProjectFactory(**{field: 1.5}))
