"""Twenty analysts claiming at the same instant never hold one item twice (PostgreSQL).

The same harness run on a naive "select the first open row, then update it" claim must find a
duplicate, which proves the harness can fail.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Callable

import pytest
from django.db import connection
from django.db.models import Count

from labeling.models import Annotation, QueueItem
from labeling.services.annotations import annotation_submit
from labeling.services.queue import queue_claim_next
from tests.factories import AnalystFactory, LabelClassFactory, ProjectFactory, queued_items

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20
ROUNDS = 8
QI = QueueItem._meta.db_table


def _race(analysts: list, claim: Callable[[object], list[int]]) -> dict[int, set[int]]:
    """Each analyst's thread waits at a barrier, then claims; repeated ROUNDS times.

    Returns item id -> the analysts that were handed it.
    """
    barrier = threading.Barrier(len(analysts))
    holders: dict[int, set[int]] = defaultdict(set)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run(analyst) -> None:
        try:
            for _ in range(ROUNDS):
                barrier.wait(timeout=60)
                for item_id in claim(analyst):
                    with lock:
                        holders[item_id].add(analyst.pk)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(a,)) for a in analysts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return holders


def _doubles(holders: dict[int, set[int]]) -> dict[int, set[int]]:
    return {item: who for item, who in holders.items() if len(who) > 1}


def test_concurrent_claims_never_hand_out_an_item_twice() -> None:
    """Claimed cases are never handed out twice, with submits running between claims."""
    project = ProjectFactory(evaluation_fraction=0.2)
    label = LabelClassFactory(project=project)
    queued_items(project, 120, slots=2, priorities=[i % 17 for i in range(120)])
    queued_items(project, 40, split="eval", priorities=list(range(40)))
    queued_items(project, 160, priorities=[i % 13 for i in range(160)])
    analysts = [AnalystFactory() for _ in range(THREADS)]

    def claim_and_label(analyst) -> list[int]:
        result = queue_claim_next(project=project, analyst=analyst)
        assert result.current is not None and result.next is not None
        annotation_submit(
            item_or_case=result.current, analyst=analyst, submission_id=uuid.uuid4(), label=label
        )
        return [result.current.pk, result.next.pk]

    holders = _race(analysts, claim_and_label)
    assert _doubles(holders) == {}
    assert len(holders) == THREADS * (ROUNDS + 1)
    labelled = Annotation.objects.values("queue_item").annotate(n=Count("id"))
    assert {row["n"] for row in labelled} == {1}
    assert labelled.count() == THREADS * ROUNDS
    per_case = QueueItem.objects.exclude(assigned_to=None).values("case", "assigned_to")
    assert per_case.annotate(n=Count("id")).filter(n__gt=1).count() == 0


def test_a_naive_first_open_row_claim_fails_the_same_harness() -> None:
    """Without locking, concurrent claimers read the same first row: duplicates appear."""
    project = ProjectFactory()
    queued_items(project, THREADS * ROUNDS, priorities=list(range(THREADS * ROUNDS)))
    analysts = [AnalystFactory() for _ in range(THREADS)]

    def naive(analyst) -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {QI} WHERE project_id = %s AND status = 'open' "
                "ORDER BY priority DESC, id LIMIT 1",
                [project.pk],
            )
            row = cursor.fetchone()
            if row is None:
                return []
            cursor.execute(
                f"UPDATE {QI} SET status = 'done', assigned_to_id = %s WHERE id = %s",
                [analyst.pk, row[0]],
            )
        return [row[0]]

    assert _doubles(_race(analysts, naive)) != {}
