"""The retrain chain in one process on the embedded default (no broker, no fan-out)."""

from __future__ import annotations

import uuid

import pytest
from django.db.models import Count, F, Q

from active_learning.models import (
    DashboardSnapshot,
    LabelIssue,
    LabelNoiseEstimate,
    ModelStatus,
    ModelVersion,
    Prediction,
)
from active_learning.reasons import TORN_MARGIN
from active_learning.services.queue_probe import PROBE
from active_learning.services.queue_refresh import SIMILAR
from active_learning.services.retrain import retrain_project, retrain_request
from active_learning.services.training import load_version
from labeling.contracts import NEUTRAL_REASON, PickReason
from labeling.models import Case, QueueItem, QueueStatus, Split
from labeling.services.annotations import Verdict, review_submit
from labeling.services.queue.fill import NOISE_AWARE
from tests.factories import AnalystFactory
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
    # Rare classes are weighed up (class_weight "auto"): the stored model and its record say so.
    assert champion.params["class_weight"] == "auto"
    assert load_version(champion).class_weight == "auto"
    # The chain's last step stored the dashboard's snapshot for this champion.
    snapshot = DashboardSnapshot.objects.get(project=project)
    assert result["dashboard"]["stored"] and snapshot.champion_id == champion.pk
    assert snapshot.counts["cases"] == 300 and snapshot.evaluation is not None
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
    # Noise-aware overlap: the unsure or prohibited picks got a second analyst, within budget.
    slots = dict(items.values("case_id").annotate(n=Count("pk")).values_list("case_id", "n"))
    noisy_picks = {
        i.case_id: i.reason["details"][NOISE_AWARE]
        for i in items
        if NOISE_AWARE in i.reason["details"]
    }
    assert 0 < len(noisy_picks) <= int(project.overlap_budget * len(slots))
    assert all(slots[c] == 2 for c in noisy_picks)
    assert all(
        n["prohibited"] or n["margin"] < project.overlap_margin for n in noisy_picks.values()
    )
    assert result["label_issues"]["checked"] > 200
    # The evaluation split was checked too, out of sample; its flagged cases get no review item.
    eval_cases = Case.objects.filter(project=project, split=Split.EVAL, given_label__isnull=False)
    assert result["label_issues"]["evaluation_checked"] == eval_cases.count() > 0
    assert LabelIssue.objects.filter(case__in=eval_cases).count() == eval_cases.count()
    # The detector's pool prune set became review items (fewer than the target: all of them).
    flagged = LabelIssue.objects.filter(project=project, in_prune_set=True, case__split=Split.POOL)
    review = QueueItem.objects.filter(project=project, status=QueueStatus.OPEN, kind="review")
    assert flagged.count() > 0
    assert set(review.values_list("case_id", flat=True)) == set(
        flagged.values_list("case_id", flat=True)
    )
    assert result["review_items"]["created"] == review.count()
    issues = {i.case_id: i for i in flagged}
    for item in review:
        issue = issues[item.case_id]
        assert item.reason["strategy"] == "label_issue" and item.model_version_id is None
        assert (item.suggestion_id, item.suggestion_p) == (
            issue.suggested_label_id,
            round(issue.suggested_p, 4),
        )
        assert len(item.similar_cases) == SIMILAR
    # They hold far more real errors of the generated data than a random case does (20%
    # injected noise; 56% of the review items on this seed, with 15 cases per class).
    cases = Case.objects.filter(project=project)
    noisy = ~Q(case__synthetic_truth__true_label=F("case__given_label"))
    base_rate = cases.exclude(synthetic_truth__true_label=F("given_label")).count() / cases.count()
    assert review.filter(noisy).count() / review.count() > 2 * base_rate


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
        assert len(item.similar_cases) == SIMILAR
        assert item.case_id not in {s["case_id"] for s in item.similar_cases}
    # Drawn at random, and said so (never "torn" by a strategy that did not pick them).
    assert {i.reason["strategy"] for i in evaluation} == {"random"}
    assert {PickReason.from_json(i.reason).sentence for i in evaluation} == {NEUTRAL_REASON}
    for item in pool:
        reason = PickReason.from_json(item.reason)
        if PROBE in reason.details:  # the pool probe's share: drawn at random, a random card
            assert reason.strategy == "random" and reason.sentence == NEUTRAL_REASON
            continue
        assert 0.0 <= reason.details["nearest_distance"] <= 2.0
        if "torn" in reason.sentence:
            assert reason.probas[0] - reason.probas[1] < TORN_MARGIN


@pytest.mark.parametrize("strategy", ["committee", "density"])
def test_every_strategy_fills_the_queue_with_reasons(pipeline_settings, strategy) -> None:
    project = generated_project(n=300, given_label_weight=1.0, batch_size=10, strategy=strategy)
    result = retrain_project(job=retrain_request(project=project, reason="test"))
    assert result["queue"]["strategy"] == strategy and result["queue"]["created"] >= 40
    items = QueueItem.objects.filter(project=project, status=QueueStatus.OPEN, kind="pool")
    assert all(len(i.reason["class_ids"]) == 2 for i in items)
    # The stored reason says why, in the strategy's own words (density is never "random"); the
    # pool probe's share (evaluation evidence is short) is drawn at random and says so.
    picked = [i for i in items if PROBE not in PickReason.from_json(i.reason).details]
    assert 0 < len(items) - len(picked) <= 0.25 * len(items)
    for item in picked:
        reason = PickReason.from_json(item.reason)
        assert reason.strategy == strategy and reason.sentence != NEUTRAL_REASON
        assert ("typical" if strategy == "density" else "committee") in reason.sentence


def test_a_second_retrain_refreshes_review_items_and_measures_the_reviews(
    pipeline_settings,
) -> None:
    """Between two retrains a reviewer accepts a suggestion: the next detection no longer flags
    that case, the other items are refreshed rather than doubled, and the noise estimate of the
    given labels counts the decision."""
    project = generated_project(n=300, given_label_weight=1.0, batch_size=10)
    retrain_project(job=retrain_request(project=project, reason="first"))
    review = QueueItem.objects.filter(project=project, kind="review")
    first = {i.case_id: i.pk for i in review.filter(status=QueueStatus.OPEN)}
    item = review.filter(status=QueueStatus.OPEN).order_by("-priority", "pk").first()
    assert item is not None
    review_submit(
        item=item,
        reviewer=AnalystFactory(),
        submission_id=uuid.uuid4(),
        verdict=Verdict.ACCEPT,
    )
    job = retrain_request(project=project, reason="second")
    result = retrain_project(job=job)
    assert not LabelIssue.objects.get(case_id=item.case_id).in_prune_set
    live = review.filter(status__in=[QueueStatus.OPEN, QueueStatus.CLAIMED])
    assert item.case_id not in set(live.values_list("case_id", flat=True))
    counts = live.values("case_id").annotate(n=Count("pk")).values_list("n", flat=True)
    assert set(counts) == {1}  # one live review item per case, never two
    kept = {i.case_id: i.pk for i in live}
    assert result["review_items"]["refreshed"] == len(set(kept) & set(first))
    assert all(kept[c] == first[c] for c in set(kept) & set(first))  # same items, refreshed
    # The decided case is served back as gold, with the champion's facts like a pool card.
    (gold,) = QueueItem.objects.filter(project=project, kind="gold", status=QueueStatus.OPEN)
    champion = ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION)
    assert gold.case_id == item.case_id and result["queue"]["gold"]["created"] == 1
    # Drawn at random at claim time: its reason is a random pick's, true of how it came.
    assert (gold.model_version_id, gold.reason["strategy"]) == (champion.pk, "random")
    assert gold.suggestion_id is not None and len(gold.reason["class_ids"]) == 2
    assert len(gold.similar_cases) == SIMILAR
    assert item.case_id not in {s["case_id"] for s in gold.similar_cases}
    estimate = LabelNoiseEstimate.objects.get(project=project, job=job)
    given = Case.objects.get(pk=item.case_id).given_label_id
    assert (estimate.given_label_id, estimate.reviewed, estimate.label_source) == (
        given,
        1,
        "import",
    )
    assert estimate.wrong == int(item.suggestion_id != given)


def test_cases_imported_mid_retrain_are_scored_by_the_next_one(pipeline_settings, monkeypatch):
    """An import that commits after the embedding step (new cases, and a case whose text
    changed) neither fails nor waits for this retrain: it trains, detects and scores what is
    embedded, and the next retrain embeds and scores the rest."""
    from active_learning.ml.hashing import content_hash
    from active_learning.services import retrain
    from labeling.models import LabelClass

    project = generated_project(n=300, given_label_weight=1.0, batch_size=10)
    label = LabelClass.objects.filter(project=project).order_by("order").first()
    late: dict[str, list[int]] = {}
    embed = retrain.PIPELINE[0]
    assert embed.name == "embed"

    def embed_then_import(ctx, report):
        embed.run(ctx, report)
        texts = [f"Late merchant {i}: handmade candles and soap, sold online." for i in range(6)]
        new = Case.objects.bulk_create(
            Case(
                project=project,
                external_id=f"late-{i}",
                text=text,
                given_label=label,
                split=("eval" if i % 2 else "pool"),
                content_hash=content_hash(text),
            )
            for i, text in enumerate(texts)
        )
        edited = Case.objects.filter(project=project, split="pool").order_by("pk").first()
        text = edited.text + " Now also sells firearms accessories."
        Case.objects.filter(pk=edited.pk).update(text=text, content_hash=content_hash(text))
        late["new"] = [c.pk for c in new]
        late["edited"] = [edited.pk]

    monkeypatch.setattr(
        retrain,
        "PIPELINE",
        (retrain.Step("embed", embed.share, embed_then_import), *retrain.PIPELINE[1:]),
    )
    job = retrain_request(project=project, reason="test")
    retrain_project(job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    v1 = ModelVersion.objects.get(project=project, number=1)
    scored = set(Prediction.objects.filter(model_version=v1).values_list("case_id", flat=True))
    waiting = set(late["new"]) | set(late["edited"])
    assert not scored & waiting
    assert len(scored) == 300 - 1  # every case embedded before the import, but the edited one

    monkeypatch.undo()
    job = retrain_request(project=project, reason="next")
    retrain_project(job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    # The champion (v1 kept or its successor) scored every case this time.
    champion = ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION)
    predicted = set(
        Prediction.objects.filter(model_version=champion).values_list("case_id", flat=True)
    )
    assert waiting <= predicted
    assert len(predicted) == 306
