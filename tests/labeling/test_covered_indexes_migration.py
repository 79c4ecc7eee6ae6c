"""Migration 0014 drops the indexes others cover, keeps the content hash's, and goes back."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("labeling", "0013_given_label_weight_default_1")]
AFTER = [("labeling", "0014_drop_covered_indexes")]
TABLES = ("labeling_case", "labeling_queueitem", "labeling_annotation")
COVERED = {
    ("labeling_case", ("project_id",)),
    ("labeling_queueitem", ("assigned_to_id",)),
    ("labeling_annotation", ("annotator_id",)),
}


def _executor() -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor


def _indexes() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every plain (non-unique, non-primary) index of the three tables: name -> (table, columns)."""
    found = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            for name, info in connection.introspection.get_constraints(cursor, table).items():
                if info["index"] and not info["unique"] and not info["primary_key"]:
                    found[name] = (table, tuple(info["columns"]))
    return found


def _hash_indexes(indexes: dict[str, tuple[str, tuple[str, ...]]]) -> set[str]:
    return {n for n, key in indexes.items() if key == ("labeling_case", ("content_hash",))}


@pytest.mark.django_db(transaction=True)
def test_covered_indexes_go_and_come_back():
    executor = _executor()
    executor.migrate(BEFORE)
    before = _indexes()
    assert set(before.values()) >= COVERED
    old_hash = _hash_indexes(before)
    # PostgreSQL has a LIKE twin (varchar_pattern_ops) beside the plain index; SQLite has not.
    assert len(old_hash) == (2 if connection.vendor == "postgresql" else 1)

    executor = _executor()
    executor.migrate(AFTER)
    after = _indexes()
    assert not COVERED & set(after.values())
    assert _hash_indexes(after) == {"case_content_hash"}
    # Each dropped index is covered by one that leads with its column.
    leading = {(table, cols[0]) for table, cols in after.values() if len(cols) > 1}
    assert {(t, cols[0]) for t, cols in COVERED} - {("labeling_case", "project_id")} <= leading
    with connection.cursor() as cursor:
        case_constraints = connection.introspection.get_constraints(cursor, "labeling_case")
    assert any(
        info["unique"] and info["columns"][:1] == ["project_id"]
        for info in case_constraints.values()
    )

    executor = _executor()
    executor.migrate(BEFORE)
    assert _indexes() == before

    executor = _executor()
    executor.migrate(executor.loader.graph.leaf_nodes())
