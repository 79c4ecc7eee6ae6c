"""The review keys (y, x, m) became reserved: a migration moves class shortcuts that used them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("labeling", "0007_queue_kinds_and_facts")]
AFTER = [("labeling", "0008_review_decisions")]


def _executor() -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor


@pytest.mark.django_db(transaction=True)
def test_colliding_shortcuts_move_to_the_first_free_keys():
    executor = _executor()
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Project = old.get_model("labeling", "Project")
    LabelClass = old.get_model("labeling", "LabelClass")
    project = Project.objects.create(name="P", slug="p-keys", split_seed=1)
    other = Project.objects.create(name="Q", slug="q-keys", split_seed=2)
    keys = {"one": "1", "yes": "y", "ex": "x", "em": "m", "two": "2", "bee": "b"}
    for order, (name, key) in enumerate(keys.items()):
        LabelClass.objects.create(project=project, name=name, shortcut_key=key, order=order)
    LabelClass.objects.create(project=other, name="lone", shortcut_key="y", order=0)

    executor = _executor()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    moved = dict(
        new.get_model("labeling", "LabelClass")
        .objects.filter(project_id=project.pk)
        .values_list("name", "shortcut_key")
    )
    # Untouched classes keep their keys; the three that collided take 3, 4, 5 in id order.
    assert moved == {"one": "1", "two": "2", "bee": "b", "yes": "3", "ex": "4", "em": "5"}
    lone = new.get_model("labeling", "LabelClass").objects.get(project_id=other.pk)
    assert lone.shortcut_key == "1"

    executor = _executor()
    executor.migrate(executor.loader.graph.leaf_nodes())
    new.get_model("labeling", "Project").objects.filter(pk__in=[project.pk, other.pk]).delete()
