"""Open items made before items carried model facts get them from their predictions."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("active_learning", "0004_job_lease_to_core"), ("labeling", "0007_queue_kinds_and_facts")]
AFTER = [("active_learning", "0005_queue_item_facts")]


@pytest.mark.django_db(transaction=True)
def test_open_items_get_the_facts_their_card_used_to_read():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    project = old.get_model("labeling", "Project").objects.create(name="P", slug="p", split_seed=1)
    LabelClass = old.get_model("labeling", "LabelClass")
    a, b, c = (
        LabelClass.objects.create(project=project, name=n, shortcut_key=str(k))
        for k, n in enumerate("abc", start=1)
    )
    case = old.get_model("labeling", "Case").objects.create(
        project=project, external_id="m1", text="t", content_hash="h"
    )
    version = old.get_model("active_learning", "ModelVersion").objects.create(
        project=project, number=1, status="champion"
    )
    old.get_model("active_learning", "Prediction").objects.create(
        case=case,
        model_version=version,
        predicted_label=b,
        confidence=0.61234,
        top_k=[[b.pk, 0.61234], [a.pk, 0.3], [c.pk, 0.08]],
    )
    QueueItem = old.get_model("labeling", "QueueItem")
    item = QueueItem.objects.create(project=project, case=case)  # no version: the champion's
    done = QueueItem.objects.create(project=project, case=case, slot=1, status="cancelled")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps.get_model("labeling", "QueueItem")
    got = new.objects.get(pk=item.pk)
    assert (got.model_version_id, got.suggestion_id, got.suggestion_p) == (version.pk, b.pk, 0.6123)
    assert got.alternatives == [[a.pk, 0.3], [c.pk, 0.08]]
    assert new.objects.get(pk=done.pk).suggestion_id is None  # only open and claimed items

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    project.delete()
