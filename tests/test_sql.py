"""The hot paths' plain statements: model instances in and out, Django's errors, prepared plans."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from django.db import IntegrityError, connection, transaction

from labeling.models import Annotation, QueueItem
from tests.factories import AnalystFactory, CaseFactory, ProjectFactory, queued_items
from workbench.core import sql
from workbench.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_insert_applies_defaults_and_sets_keys_of_every_row() -> None:
    project = ProjectFactory()
    events = [
        AuditEvent(project_id=project.pk, action="x", object_type="t", object_id=str(i))
        for i in range(3)
    ]
    sql.insert(*events)
    assert all(e.pk for e in events) and len({e.pk for e in events}) == 3
    stored = AuditEvent.objects.get(pk=events[1].pk)
    assert stored.object_id == "1" and stored.created_at == events[1].created_at
    assert isinstance(stored.created_at, datetime) and stored.created_at.tzinfo is not None


def test_load_converts_values_as_the_orm_does() -> None:
    """JSON, booleans, datetimes and UUIDs come back typed on every backend."""
    project = ProjectFactory()
    (item,) = queued_items(project, 1)
    QueueItem.objects.filter(pk=item.pk).update(reason={"strategy": "margin", "score": 0.5})
    case = item.case
    annotation = Annotation.objects.create(
        case=case,
        annotator=AnalystFactory(),
        noise_flag=True,
        shown={"top": [1, 2]},
        submission_id=uuid.uuid4(),
        content_hash=case.content_hash,
    )
    names = ("id", "reason", "alternatives", "created_at")
    row = sql.fetch_one(
        f"SELECT {sql.select_columns(QueueItem, names)} FROM {QueueItem._meta.db_table} "
        "WHERE id = %s",
        [item.pk],
    )
    loaded = sql.load(QueueItem, names, row)
    orm = QueueItem.objects.get(pk=item.pk)
    assert loaded.reason == {"strategy": "margin", "score": 0.5} == orm.reason
    assert loaded.alternatives == orm.alternatives
    assert loaded.created_at == orm.created_at
    assert loaded.get_deferred_fields() >= {"priority", "status"}
    names = ("id", "noise_flag", "shown", "submission_id")
    row = sql.fetch_one(
        f"SELECT {sql.select_columns(Annotation, names)} FROM {Annotation._meta.db_table} "
        "WHERE id = %s",
        [annotation.pk],
    )
    loaded = sql.load(Annotation, names, row)
    assert loaded.noise_flag is True and loaded.shown == {"top": [1, 2]}
    assert loaded.submission_id == annotation.submission_id


def test_select_columns_rejects_unknown_columns() -> None:
    with pytest.raises(ValueError, match="no columns"):
        sql.select_columns(QueueItem, ("id", "nope"))


def test_constraint_violations_raise_djangos_integrity_error() -> None:
    case = CaseFactory()
    analyst = AnalystFactory()
    sid = uuid.uuid4()

    def annotation() -> Annotation:
        return Annotation(
            case=case, annotator=analyst, submission_id=sid, content_hash=case.content_hash
        )

    sql.insert(annotation())
    with pytest.raises(IntegrityError), transaction.atomic():
        sql.insert(annotation())
    assert Annotation.objects.filter(submission_id=sid).count() == 1


@pytest.mark.postgres
def test_statements_are_prepared_once_per_connection_on_postgresql() -> None:
    """Run twice, a statement is parsed and planned once (psycopg prepares it on first use)."""
    statement = f"SELECT count(*) FROM {QueueItem._meta.db_table} WHERE project_id = %s"
    project = ProjectFactory()
    queued_items(project, 2)
    assert sql.fetch_one(statement, [project.pk]) == (2,)
    assert sql.fetch_one(statement, [project.pk]) == (2,)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            [f"SELECT count(*) FROM {QueueItem._meta.db_table} WHERE project_id = $1%"],
        )
        assert cursor.fetchone() == (1,)


def test_a_batch_returns_rows_after_the_block_and_raises_djangos_errors() -> None:
    """Batched writes (one round trip on PostgreSQL) give their rows back after the block; a
    failing one raises Django's IntegrityError there and the transaction keeps nothing."""
    case = CaseFactory()
    analyst = AnalystFactory()
    table = AuditEvent._meta.db_table
    with transaction.atomic():
        with sql.batch() as writes:
            writes.insert(AuditEvent(action="a", object_type="t", object_id="1"))
            counted = writes.execute(f"SELECT count(*) FROM {table} WHERE action = %s", ["a"])
        assert writes.row(counted) == (1,)
    sid = uuid.uuid4()
    first = Annotation(case=case, annotator=analyst, submission_id=sid, content_hash="h")
    sql.insert(first)
    with pytest.raises(IntegrityError), transaction.atomic(), sql.batch() as writes:
        writes.insert(AuditEvent(action="b", object_type="t", object_id="2"))
        writes.insert(Annotation(case=case, annotator=analyst, submission_id=sid, content_hash="h"))
    assert not AuditEvent.objects.filter(action="b").exists()
    assert Annotation.objects.filter(submission_id=sid).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_that_died_since_the_last_request_is_replaced() -> None:
    """As Django's cursors do with CONN_HEALTH_CHECKS: a request's first plain statement (now
    the session's) finds a persistent connection a server restart broke and reconnects."""
    connection.ensure_connection()
    assert connection.health_check_enabled
    connection.connection.close()  # what a restarted server leaves behind
    connection.health_check_done = False  # as at the start of each request
    assert sql.fetch_one("SELECT 1") == (1,)
