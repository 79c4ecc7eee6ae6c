"""Lock order (PostgreSQL): bulk writers of queue items lock the cases they touch before the
project, as a label does (case, then items, then project); a group decision and its undo lock
their cases in id order. Nothing that holds a case deadlocks with them.

A thread holds a case's lock, as a label in flight does; the bulk writer started meanwhile must
wait for that case without holding the project's lock, so the "label" can still take the project
row (NOWAIT) before it commits. Writers that took the project's lock first fail this.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from active_learning.models import LabelIssue
from active_learning.services.review_items import review_items_refresh
from labeling.models import Case, Project, QueueItem, QueueKind, Tier
from labeling.services.adjudication import (
    UNCERTAIN,
    AdjudicationWanted,
    adjudication_items_refresh,
)
from tests.factories import CaseFactory, LabelClassFactory, ProjectFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _adjudications(project: Project, case: Case) -> None:
    wanted = [AdjudicationWanted(case.pk, UNCERTAIN, "Unsure.", 0.5)]
    adjudication_items_refresh(project=project, wanted=wanted)


def _reviews(project: Project, case: Case) -> None:
    review_items_refresh(project=project)


@pytest.mark.parametrize("writer", [_adjudications, _reviews], ids=["adjudication", "review"])
def test_a_bulk_item_writer_waits_for_a_labelled_case_before_the_project(writer) -> None:
    project = ProjectFactory()
    given = LabelClassFactory(project=project, tier=Tier.SUPPORTABLE)
    suggested = LabelClassFactory(project=project, tier=Tier.PROHIBITED)
    case = CaseFactory(project=project, given_label=given)
    LabelIssue.objects.create(
        project=project,
        case=case,
        given_label=given,
        suggested_label=suggested,
        suggested_p=0.99,
        score=0.99,
        self_confidence=0.01,
        in_prune_set=True,
    )
    case_locked, writer_started = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def label_in_flight() -> None:
        try:
            with transaction.atomic():
                Case.objects.select_for_update().get(pk=case.pk)
                case_locked.set()
                writer_started.wait(10)
                time.sleep(0.5)  # the writer is now blocked on something
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT id FROM {Project._meta.db_table} WHERE id = %s FOR UPDATE NOWAIT",
                        [project.pk],
                    )
                outcome["project_free"] = True
        except Exception as exc:  # NOWAIT failed: the writer holds the project
            outcome["project_free"] = repr(exc)
        finally:
            connection.close()

    def bulk_writer() -> None:
        try:
            case_locked.wait(10)
            writer_started.set()
            writer(project, case)
            outcome["written"] = True
        except Exception as exc:
            outcome["written"] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=label_in_flight), threading.Thread(target=bulk_writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcome == {"project_free": True, "written": True}
    kind = QueueKind.ADJUDICATION if writer is _adjudications else QueueKind.REVIEW
    assert QueueItem.objects.filter(case=case, kind=kind).count() == 1


def test_a_group_undo_locks_its_cases_in_id_order() -> None:
    """A group decision on a case with a lower-id member: its undo waits for the member (held,
    as a second group decision in flight holds it, id order first) before taking its own case,
    so the other transaction can still lock the head case."""
    import uuid

    from labeling.services.annotations import Verdict, annotation_undo, review_submit
    from tests.factories import AnalystFactory, QueueItemFactory

    project = ProjectFactory()
    ok, bad = LabelClassFactory(project=project), LabelClassFactory(project=project)
    member = CaseFactory(project=project, given_label=ok)
    head = CaseFactory(project=project, given_label=ok)
    assert member.pk < head.pk
    item = QueueItemFactory(case=head, kind=QueueKind.REVIEW, slot=90, group=[member.pk])
    reviewer = AnalystFactory()
    review_submit(
        item=item,
        reviewer=reviewer,
        submission_id=uuid.uuid4(),
        verdict=Verdict.RELABEL,
        label=bad,
        apply_group=True,
    )
    member_locked, undo_started = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def decision_in_flight() -> None:
        try:
            with transaction.atomic():
                Case.objects.select_for_update().get(pk=member.pk)
                member_locked.set()
                undo_started.wait(10)
                time.sleep(0.5)
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT id FROM {Case._meta.db_table} WHERE id = %s FOR UPDATE NOWAIT",
                        [head.pk],
                    )
                outcome["head_free"] = True
        except Exception as exc:
            outcome["head_free"] = repr(exc)
        finally:
            connection.close()

    def undo() -> None:
        try:
            member_locked.wait(10)
            undo_started.set()
            annotation_undo(project=project, analyst=reviewer)
            outcome["undone"] = True
        except Exception as exc:
            outcome["undone"] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=decision_in_flight), threading.Thread(target=undo)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcome == {"head_free": True, "undone": True}
