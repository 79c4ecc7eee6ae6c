"""The retrain chain in one process on the embedded default (no broker, no fan-out)."""

from __future__ import annotations

import pytest

from active_learning.models import ModelStatus, ModelVersion, Prediction
from active_learning.services.retrain import retrain_project, retrain_request
from labeling.contracts import NEUTRAL_REASON, PickReason
from labeling.models import QueueItem, QueueStatus
from tests.pipeline import generated_project
from workbench.core.models import JobStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pipeline_settings(settings, tmp_path):
    settings.WORKBENCH_DATA_DIR = tmp_path
    settings.PIPELINE_FANOUT = False
    return settings


def test_chain_trains_promotes_scores_and_fills_the_queue(pipeline_settings) -> None:
    project = generated_project(n=300, given_label_weight=1.0, batch_size=10)
    job = retrain_request(project=project, reason="test")
    result = retrain_project(job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    champion = ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION)
    assert result["trained"] == champion.number == 1
    assert Prediction.objects.filter(model_version=champion).count() == 300
    # Calibrated, not flat: 20 classes at 1/20 each would mean the calibration failed.
    confidence = sorted(
        Prediction.objects.filter(model_version=champion).values_list("confidence", flat=True)
    )
    assert confidence[len(confidence) // 2] > 0.3
    items = QueueItem.objects.filter(project=project, status=QueueStatus.OPEN, kind="pool")
    assert items.count() >= 40
    assert set(items.values_list("model_version_id", flat=True)) == {champion.pk}
    # Every queued case's card can show the champion's alternatives.
    queued = Prediction.objects.filter(model_version=champion, case__queue_items__in=items)
    assert not queued.filter(top_k__isnull=True).exists()
    assert result["label_issues"]["checked"] > 200


def test_evaluation_items_carry_the_same_model_facts_as_pool_items(pipeline_settings) -> None:
    """Evaluation cards state the champion's facts and similar cases, like every other card."""
    project = generated_project(n=300, given_label_weight=1.0, batch_size=10)
    retrain_project(job=retrain_request(project=project, reason="test"))
    evaluation = QueueItem.objects.filter(
        project=project, status=QueueStatus.OPEN, kind="evaluation"
    )
    pool = QueueItem.objects.filter(project=project, status=QueueStatus.OPEN, kind="pool")
    assert evaluation.count() >= 10
    for item in list(evaluation) + list(pool[:10]):
        assert set(item.reason) >= {"strategy", "class_ids", "probas"}, item.reason
        assert len(item.similar_cases) == 5
        assert item.case_id not in {s["case_id"] for s in item.similar_cases}
    assert {i.reason["strategy"] for i in evaluation} == {project.strategy}


@pytest.mark.parametrize("strategy", ["committee", "density"])
def test_every_strategy_fills_the_queue_with_reasons(pipeline_settings, strategy) -> None:
    project = generated_project(n=300, given_label_weight=1.0, batch_size=10, strategy=strategy)
    result = retrain_project(job=retrain_request(project=project, reason="test"))
    assert result["queue"]["strategy"] == strategy and result["queue"]["created"] >= 40
    items = QueueItem.objects.filter(project=project, status=QueueStatus.OPEN, kind="pool")
    assert all(len(i.reason["class_ids"]) == 2 for i in items)
    # The stored reason says why, in the strategy's own words (density is never "random").
    for item in items:
        reason = PickReason.from_json(item.reason)
        assert reason.strategy == strategy and reason.sentence != NEUTRAL_REASON
        assert ("typical" if strategy == "density" else "committee") in reason.sentence
