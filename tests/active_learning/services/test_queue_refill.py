"""A queue running low is topped up from the champion's stored predictions, without a retrain."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning.ml.pool_probe import interleave, probe_keys
from active_learning.ml.strategies.uncertainty import entropy, margin_uncertainty
from active_learning.models import ModelStatus, ModelVersion
from active_learning.services.queue_probe import PROBE
from active_learning.services.queue_refill import SOURCE, queue_refill_stored
from active_learning.services.scoring import Scores, full_rows_mask, predictions_write
from labeling.contracts import PickReason
from labeling.models import Case, QueueItem, QueueKind, QueueStatus, ResolvedLabel, Split
from labeling.services.queue import QueueEntry, queue_claim_next, queue_items_create
from labeling.services.queue.refill import queue_top_up
from tests.factories import AnalystFactory, CaseFactory, LabelClassFactory, ProjectFactory
from workbench.core.models import Job, JobKind, JobStatus

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

N_CASES = 60


def _project(*, strategy: str = "diversity", with_top_k: bool = True, **fields):
    """A project of N_CASES pool cases with a champion whose scores are stored (no retrain can
    run: a retrain is already queued, waiting for a busy worker). Returns (project, version,
    case ids, proba) with proba's rows in case-id order."""
    # Past the warm-up unless a test says otherwise: the pool probe takes no share of the picks.
    fields.setdefault("evaluation_evidence_short", False)
    project = ProjectFactory(batch_size=5, strategy=strategy, evaluation_fraction=0.0, **fields)
    LabelClassFactory.create_batch(4, project=project)
    cases = CaseFactory.create_batch(N_CASES, project=project)
    case_ids = np.array(sorted(c.pk for c in cases), dtype=np.int64)
    proba = np.random.default_rng(3).dirichlet(np.ones(4), size=N_CASES).astype(np.float32)
    version = ModelVersion.objects.create(project=project, number=1, status=ModelStatus.CHAMPION)
    scores = _scores(project, version, case_ids, proba)
    full = full_rows_mask(project=project, scores=scores) if with_top_k else None
    predictions_write(scores=scores, full_case_ids=set(), full_mask=full)
    Job.objects.create(kind=JobKind.RETRAIN, project=project, status=JobStatus.QUEUED)
    return project, version, case_ids, proba


def _scores(project, version, case_ids: np.ndarray, proba: np.ndarray) -> Scores:
    """`proba` (rows in case-id order) as the version's scores of the pool cases `case_ids`."""
    class_ids = [c.pk for c in project.label_classes.order_by("pk")]
    n = len(case_ids)
    return Scores(version, case_ids, np.zeros(n, dtype=bool), np.arange(n), proba, class_ids)


def _by_margin(case_ids: np.ndarray, proba: np.ndarray, taken: set[int]) -> list[int]:
    """Case ids, most uncertain by margin first (ties by id), without `taken`."""
    u = margin_uncertainty(proba)
    order = sorted(range(len(case_ids)), key=lambda i: (-float(u[i]), int(case_ids[i])))
    return [int(case_ids[i]) for i in order if int(case_ids[i]) not in taken]


def _open_pool_cases(project) -> set[int]:
    return set(
        QueueItem.objects.filter(
            project=project, status=QueueStatus.OPEN, kind=QueueKind.POOL
        ).values_list("case_id", flat=True)
    )


def test_a_queue_running_low_gets_model_picks_while_the_retrain_waits(
    django_capture_on_commit_callbacks,
) -> None:
    """The claim that finds the queue low tops it up after commit from the champion's stored
    scores: the most uncertain free cases by margin (the diversity strategy needs vectors),
    with reasons and model facts, while the requested retrain still waits for a worker."""
    project, version, case_ids, proba = _project()
    first = [int(c) for c in case_ids[:3]]
    queue_items_create(
        project=project, entries=[QueueEntry(c, 0.0, {"strategy": "random"}) for c in first]
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = queue_claim_next(project=project, analyst=AnalystFactory())
    assert result.current is not None and result.next is not None
    held = {result.current.case_id, result.next.case_id}
    new = _open_pool_cases(project) - set(first)
    # keep 4 batches (no pace measured yet); one of the three first cases is still open
    assert len(new) == 4 * 5 - 1
    assert sorted(new) == sorted(_by_margin(case_ids, proba, set(first))[: len(new)])
    names = {c.pk: c.name for c in project.label_classes.all()}
    u = dict(zip(case_ids.tolist(), margin_uncertainty(proba).tolist(), strict=True))
    p = dict(zip(case_ids.tolist(), proba.tolist(), strict=True))
    for item in QueueItem.objects.filter(project=project, case_id__in=new):
        reason = PickReason.from_json(item.reason)
        assert reason.strategy == "margin"
        assert reason.details["source"] == SOURCE
        assert reason.details["project_strategy"] == "diversity"
        assert reason.score == pytest.approx(1 - u[item.case_id], abs=1e-4)
        assert reason.sentence.startswith(f"The model is torn between {names[reason.class_ids[0]]}")
        top = np.argsort(-np.asarray(p[item.case_id]))
        class_ids = [c.pk for c in project.label_classes.order_by("pk")]
        assert item.model_version_id == version.pk
        assert item.suggestion_id == class_ids[top[0]]
        assert item.suggestion_p == pytest.approx(p[item.case_id][top[0]], abs=1e-4)
        assert [c for c, _ in item.alternatives] == [class_ids[top[1]], class_ids[top[2]]]
    assert held <= set(first)
    # No retrain ran: one version, and the retrain asked for is still waiting.
    assert ModelVersion.objects.filter(project=project).count() == 1
    assert list(Job.objects.filter(project=project).values_list("status", flat=True)) == [
        JobStatus.QUEUED
    ]


def test_an_empty_queue_serves_a_model_pick_not_a_random_case() -> None:
    """With nothing open at all, the claim's own top-up serves the champion's most uncertain
    case by its stored scores, never a random one."""
    project, _version, case_ids, proba = _project()
    result = queue_claim_next(project=project, analyst=AnalystFactory())
    assert result.current is not None
    reason = PickReason.from_json(result.current.reason)
    assert reason.strategy == "margin"
    best = _by_margin(case_ids, proba, set())[:2]
    assert {result.current.case_id, result.next.case_id} == set(best)


def test_busy_labelled_queued_excluded_and_evaluation_cases_are_never_picked() -> None:
    project, _version, case_ids, proba = _project(noise_aware_overlap=False)
    ids = [int(c) for c in _by_margin(case_ids, proba, set())[:6]]  # the six best candidates
    queue_items_create(
        project=project, entries=[QueueEntry(c, 0.0, {"strategy": "random"}) for c in ids[:3]]
    )
    analyst = AnalystFactory()
    QueueItem.objects.filter(case_id=ids[0]).update(status=QueueStatus.CLAIMED, assigned_to=analyst)
    QueueItem.objects.filter(case_id=ids[1]).update(status=QueueStatus.DONE, assigned_to=analyst)
    ResolvedLabel.objects.create(case_id=ids[3], label=None, source="annotation", excluded=True)
    label = project.label_classes.first()
    ResolvedLabel.objects.create(case_id=ids[4], label=label, source="review")
    Case.objects.filter(pk=ids[5]).update(split=Split.EVAL)
    created = queue_refill_stored(project=project, count=N_CASES)
    assert created == N_CASES - 6
    assert _open_pool_cases(project) - {ids[2]} == set(_by_margin(case_ids, proba, set(ids)))
    # A cancelled item does not make its case busy.
    QueueItem.objects.filter(case_id=ids[2]).update(status=QueueStatus.CANCELLED)
    assert queue_refill_stored(project=project, count=N_CASES) == 1


@pytest.mark.parametrize("strategy", ["least_confidence", "entropy"])
def test_stored_measures_pick_by_the_projects_strategy(strategy) -> None:
    project, _version, case_ids, proba = _project(strategy=strategy, noise_aware_overlap=False)
    count = 10
    assert queue_refill_stored(project=project, count=count) == len(
        set(QueueItem.objects.filter(project=project).values_list("case_id", flat=True))
    )
    measure = 1 - proba.max(axis=1) if strategy == "least_confidence" else entropy(proba)
    picked = np.isin(case_ids, list(_open_pool_cases(project)))
    assert picked.sum() == count
    # Every pick is at least as informative as every case left (top-k are rounded: 1e-3).
    assert measure[picked].min() >= measure[~picked].max() - 1e-3
    reasons = [PickReason.from_json(i.reason) for i in QueueItem.objects.filter(project=project)]
    assert {r.strategy for r in reasons} == {strategy}
    assert all("project_strategy" not in r.details for r in reasons)


def test_only_rows_stored_with_top_k_are_candidates() -> None:
    """Compact rows (the millions past the reserve and the stop set) are never read: a
    top-up picks among the rows with top-k, in the measure's order."""
    project, version, case_ids, proba = _project(noise_aware_overlap=False)
    full = np.zeros(N_CASES, dtype=bool)
    full[::6] = True  # 10 rows
    scores = _scores(project, version, case_ids, proba)
    predictions_write(scores=scores, full_case_ids=set(), full_mask=full)
    assert queue_refill_stored(project=project, count=N_CASES) == 10
    priority = dict(QueueItem.objects.filter(project=project).values_list("case_id", "priority"))
    ranked = sorted(priority, key=lambda c: -priority[c])
    assert ranked == _by_margin(case_ids[full], proba[full], set())
    assert queue_refill_stored(project=project, count=5) == 0  # none left: no random here


def test_during_warm_up_the_top_up_serves_the_pool_probe_at_its_share() -> None:
    """While evaluation evidence is short, a fifth of a top-up is the pool probe's: the free pool
    cases with the lowest probe keys, whatever their stored scores, spread among the margin
    picks and said as random picks with the champion's facts; the next top-up goes on in key
    order past the cases taken meanwhile."""
    project, version, case_ids, proba = _project(
        evaluation_evidence_short=True, noise_aware_overlap=False
    )
    keys = dict(
        zip(case_ids.tolist(), probe_keys(case_ids, project.split_seed).tolist(), strict=True)
    )
    by_key = sorted(keys, key=keys.get)
    label = project.label_classes.first()
    ResolvedLabel.objects.create(case_id=by_key[0], label=label, source="annotation")
    assert queue_refill_stored(project=project, count=20) == 20
    items = list(QueueItem.objects.filter(project=project).order_by("-priority"))
    reasons = [PickReason.from_json(i.reason) for i in items]
    is_probe = [PROBE in r.details for r in reasons]
    assert is_probe == interleave(20, 4).tolist()
    probes = [i.case_id for i, p in zip(items, is_probe, strict=True) if p]
    assert sorted(probes, key=keys.get) == by_key[1:5]  # the labelled lowest key is settled
    picks = [i.case_id for i, p in zip(items, is_probe, strict=True) if not p]
    assert picks == _by_margin(case_ids, proba, set(probes) | {by_key[0]})[:16]
    class_ids = [c.pk for c in project.label_classes.order_by("pk")]
    p = dict(zip(case_ids.tolist(), proba.tolist(), strict=True))
    for item, reason in zip(items, reasons, strict=True):
        if PROBE not in reason.details:
            assert reason.strategy == "margin"
            continue
        assert reason.strategy == "random" and reason.details["source"] == SOURCE
        assert reason.details[PROBE] == pytest.approx(keys[item.case_id], abs=1e-6)
        assert item.model_version_id == version.pk
        assert item.suggestion_id == class_ids[int(np.argmax(p[item.case_id]))]
    # The next top-up: the next four keys among the cases still free.
    assert queue_refill_stored(project=project, count=20) == 20
    taken = {i.case_id for i in items} | {by_key[0]}
    later = QueueItem.objects.filter(project=project).exclude(case_id__in=taken)
    probes_later = [i.case_id for i in later if PROBE in i.reason.get("details", {})]
    assert sorted(probes_later, key=keys.get) == [c for c in by_key if c not in taken][:4]
    # Past the warm-up the top-up is the strategy's alone.
    QueueItem.objects.filter(project=project).update(status=QueueStatus.CANCELLED)
    project.evaluation_evidence_short = False
    project.save(update_fields=["evaluation_evidence_short"])
    queue_refill_stored(project=project, count=20)
    open_items = QueueItem.objects.filter(project=project, status=QueueStatus.OPEN)
    assert not [i for i in open_items if PROBE in i.reason.get("details", {})]


def test_a_probe_case_stored_compact_still_shows_the_champions_suggestion() -> None:
    """Most of a large pool is stored without top-k: a probe case there gets the suggestion and
    its probability from its compact row, and no classes in its reason."""
    project, version, case_ids, proba = _project(
        evaluation_evidence_short=True, noise_aware_overlap=False
    )
    scores = _scores(project, version, case_ids, proba)
    predictions_write(scores=scores, full_case_ids=set(), full_mask=np.zeros(N_CASES, dtype=bool))
    assert queue_refill_stored(project=project, count=5) == 1  # the probe's one; no top-k left
    item = QueueItem.objects.get(project=project)
    reason = PickReason.from_json(item.reason)
    assert PROBE in reason.details and reason.strategy == "random" and reason.class_ids == ()
    row = int(np.flatnonzero(case_ids == item.case_id)[0])
    class_ids = [c.pk for c in project.label_classes.order_by("pk")]
    assert item.suggestion_id == class_ids[int(np.argmax(proba[row]))]
    assert item.suggestion_p == pytest.approx(float(proba[row].max()), abs=1e-3)


def test_without_champion_or_stored_scores_the_top_up_is_random() -> None:
    project = ProjectFactory(batch_size=5, evaluation_fraction=0.0)
    CaseFactory.create_batch(30, project=project)
    assert queue_refill_stored(project=project, count=5) is None
    assert queue_top_up(project_id=project.pk) == 20
    assert {i.reason["strategy"] for i in QueueItem.objects.filter(project=project)} == {"random"}
    # A champion with no stored prediction: still random, and a retrain is asked for.
    QueueItem.objects.filter(project=project).update(status=QueueStatus.CANCELLED)
    ModelVersion.objects.create(project=project, number=1, status=ModelStatus.CHAMPION)
    assert queue_refill_stored(project=project, count=5) is None
    assert queue_top_up(project_id=project.pk) == 20
    assert Job.objects.filter(project=project, kind=JobKind.RETRAIN).count() == 1
