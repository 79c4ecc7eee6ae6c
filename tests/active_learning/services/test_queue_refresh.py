"""Refilling the queue stores typed pick reasons, with sentences written on the model side."""

from __future__ import annotations

import pytest

from active_learning.ml.pool_probe import PROBE_SHARE, probe_count
from active_learning.services.embeddings import (
    embed_missing,
    hashes_missing,
    matrix_sync,
    model_name_current,
)
from active_learning.services.queue_probe import PROBE
from active_learning.services.queue_refresh import refresh_queue, target_size
from labeling.contracts import NEUTRAL_REASON, PickReason
from labeling.models import LabelClass, QueueItem, QueueStatus
from tests.pipeline import generated_project

pytestmark = pytest.mark.django_db


def test_cold_start_items_store_their_reason_as_a_pick_reason(settings, tmp_path) -> None:
    """Without a model, zero-shot and k-means picks store PickReason JSON naming their cause."""
    settings.WORKBENCH_DATA_DIR = tmp_path
    settings.PIPELINE_FANOUT = False
    project = generated_project(n=80, batch_size=5)
    embed_missing(
        project=project, hashes=hashes_missing(project=project, model_name=model_name_current())
    )
    matrix_sync()
    result = refresh_queue(project=project, scores=None)
    assert result["strategy"] == "cold_start" and result["created"] > 0
    items = QueueItem.objects.filter(project=project, status=QueueStatus.OPEN, kind="pool")
    names = {c.pk: c.display_name or c.name for c in LabelClass.objects.filter(project=project)}
    kinds = set()
    for item in items:
        assert set(item.reason) == {
            "strategy",
            "sentence",
            "sentence_blind",
            "score",
            "class_ids",
            "probas",
            "details",
        }
        reason = PickReason.from_json(item.reason)
        kinds.add(reason.strategy)
        if PROBE in reason.details:  # the pool probe's share: drawn at random, and says so
            assert reason.strategy == "random" and reason.sentence == NEUTRAL_REASON
            continue
        assert reason.sentence != NEUTRAL_REASON
        if reason.strategy == "zero_shot":
            name = names[reason.class_ids[0]]
            assert reason.sentence == f"No model yet: closest to the description of {name}."
            assert names[reason.class_ids[0]] not in reason.sentence_blind
        else:
            size = reason.details["cluster_size"]
            assert reason.sentence == (
                f"No model yet: a typical example of a cluster of {size:,} similar merchants."
            )
    assert kinds == {"zero_shot", "kmeans_medoid", "random"}
    assert result["probe"] == probe_count(target_size(project), PROBE_SHARE) == 4
