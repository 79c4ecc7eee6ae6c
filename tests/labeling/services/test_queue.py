"""The queue hands out items atomically, by priority, with leases, overlap (random and
noise-aware) and evaluation draws."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from scipy.stats import spearmanr

from labeling.contracts import ModelFacts, PickReason
from labeling.models import Case, QueueItem, QueueStatus, Split, Tier
from labeling.selectors import queue_items_held, queue_open_count
from labeling.services.queue import (
    QueueEntry,
    lease_seconds,
    queue_claim_next,
    queue_fill_random,
    queue_items_create,
    queue_lease_renew,
    queue_release_expired,
)
from labeling.services.queue.fill import NOISE_AWARE
from tests.factories import (
    AnalystFactory,
    CaseFactory,
    LabelClassFactory,
    ProjectFactory,
    queued_items,
)

pytestmark = pytest.mark.django_db


def _done(item: QueueItem) -> None:
    QueueItem.objects.filter(pk=item.pk).update(status=QueueStatus.DONE)


def _bulk_items(project, n: int, *, split: str, priorities: list[float]) -> list[QueueItem]:
    cases = Case.objects.bulk_create(
        Case(
            project=project, external_id=f"{split}-{i}", text=f"t{i}", content_hash="h", split=split
        )
        for i in range(n)
    )
    return QueueItem.objects.bulk_create(
        QueueItem(
            project=project,
            case=c,
            kind="evaluation" if split == Split.EVAL else "pool",
            priority=p,
            random_key=random.Random(c.pk).random(),
        )
        for c, p in zip(cases, priorities, strict=True)
    )


def test_claim_returns_current_and_next_held_by_the_analyst(project) -> None:
    """A claim returns the two best open items, both held by the analyst with a lease."""
    items = queued_items(project, 3, priorities=[0.1, 0.9, 0.5])
    analyst = AnalystFactory()
    now = timezone.now()
    result = queue_claim_next(project=project, analyst=analyst, now=now)
    assert [result.current.pk, result.next.pk] == [items[1].pk, items[2].pk]
    for item in (result.current, result.next):
        item.refresh_from_db()
        assert item.status == QueueStatus.CLAIMED
        assert item.assigned_to == analyst
        assert item.lease_expires_at == now + timedelta(seconds=lease_seconds())


def test_reload_returns_the_held_items_and_claims_nothing_new(project) -> None:
    """A reload never leaks items: the same two come back, their leases renewed once past half."""
    queued_items(project, 5, priorities=[5, 4, 3, 2, 1])
    analyst = AnalystFactory()
    now = timezone.now()
    lease = timedelta(seconds=lease_seconds())
    first = queue_claim_next(project=project, analyst=analyst, now=now)
    again = queue_claim_next(project=project, analyst=analyst, now=now + lease * 0.3)
    assert (again.current.pk, again.next.pk) == (first.current.pk, first.next.pk)
    assert QueueItem.objects.filter(status=QueueStatus.CLAIMED).count() == 2
    assert again.current.lease_expires_at == now + lease  # more than half left: unchanged
    late = queue_claim_next(project=project, analyst=analyst, now=now + lease * 0.6)
    assert (late.current.pk, late.next.pk) == (first.current.pk, first.next.pk)
    assert {late.current.lease_expires_at, late.next.lease_expires_at} == {now + lease * 1.6}
    expired = queue_claim_next(project=project, analyst=analyst, now=now + lease * 2)
    assert expired.current.pk == first.current.pk  # still held, renewed


def test_after_completing_the_current_item_the_next_becomes_current(project) -> None:
    """Completing the current item promotes the pre-claimed next one and claims a new next."""
    items = queued_items(project, 3, priorities=[3, 2, 1])
    analyst = AnalystFactory()
    first = queue_claim_next(project=project, analyst=analyst)
    _done(first.current)
    second = queue_claim_next(project=project, analyst=analyst)
    assert (second.current.pk, second.next.pk) == (items[1].pk, items[2].pk)


def test_an_analyst_never_gets_two_items_of_one_case(project) -> None:
    """With overlap, each analyst takes one item of a case; the others go to other analysts."""
    items = queued_items(project, 1, slots=3, priorities=[1.0])
    analysts = [AnalystFactory() for _ in range(4)]
    taken = [queue_claim_next(project=project, analyst=a).current for a in analysts]
    assert taken[3] is None
    assert sorted(i.pk for i in taken[:3]) == sorted(i.pk for i in items)
    assert {i.assigned_to_id for i in QueueItem.objects.all()} == {a.pk for a in analysts[:3]}


def test_overlap_gives_k_different_analysts_one_item_each(project) -> None:
    """A case that needs k labels is labelled by k different analysts, one item each."""
    project.overlap, project.overlap_fraction = 3, 1.0
    project.save()
    case = CaseFactory(project=project)
    created = queue_items_create(project=project, entries=[(case.pk, 1.0, {}, None, [])])
    assert sorted(i.slot for i in created) == [0, 1, 2]
    analysts = [AnalystFactory() for _ in range(3)]
    for analyst in analysts:
        result = queue_claim_next(project=project, analyst=analyst)
        assert result.current.case_id == case.pk and result.next is None
        _done(result.current)
    assert queue_claim_next(project=project, analyst=analysts[0]).current is None
    holders = QueueItem.objects.filter(case=case).values_list("assigned_to", flat=True)
    assert sorted(holders) == sorted(a.pk for a in analysts)


def test_an_expired_claim_returns_to_the_queue_without_a_reaper(project) -> None:
    """Another analyst's claim takes an item whose lease has run out."""
    (item,) = queued_items(project, 1)
    first, second = AnalystFactory(), AnalystFactory()
    now = timezone.now()
    assert queue_claim_next(project=project, analyst=first, now=now).current.pk == item.pk
    early = now + timedelta(seconds=lease_seconds() - 1)
    assert queue_claim_next(project=project, analyst=second, now=early).current is None
    late = now + timedelta(seconds=lease_seconds() + 1)
    assert queue_claim_next(project=project, analyst=second, now=late).current.pk == item.pk
    item.refresh_from_db()
    assert item.assigned_to == second


def test_expired_claims_come_back_at_the_minute_tick_while_others_are_open(
    project, settings
) -> None:
    """A claim takes an open item before it releases anything; the tick returns expired ones."""
    from workbench.tick import minute_tick

    settings.QUEUE_LEASE_SECONDS = 0  # every claim expires at once
    queued_items(project, 5, priorities=[5, 4, 3, 2, 1])
    first, second = AnalystFactory(), AnalystFactory()
    now = timezone.now()
    taken = queue_claim_next(project=project, analyst=first, now=now)
    other = queue_claim_next(project=project, analyst=second, now=now)
    assert {other.current.pk, other.next.pk}.isdisjoint({taken.current.pk, taken.next.pk})
    assert QueueItem.objects.filter(assigned_to=first, status=QueueStatus.CLAIMED).count() == 2
    assert minute_tick()["leases_released"] == 4  # the tick runs after `now`
    assert not QueueItem.objects.filter(assigned_to=first).exists()
    assert queue_open_count(project=project) == 5


def test_release_expired_reopens_only_expired_claims(project) -> None:
    """The reaper returns expired claims to the open queue and leaves live ones alone."""
    queued_items(project, 4, priorities=[4, 3, 2, 1])
    now = timezone.now()
    lease = timedelta(seconds=lease_seconds())
    queue_claim_next(project=project, analyst=AnalystFactory(), now=now)
    queue_claim_next(project=project, analyst=AnalystFactory(), now=now + lease / 2)
    assert queue_release_expired(now=now + lease * 0.9) == 0
    assert queue_release_expired(now=now + lease * 1.1) == 2
    assert queue_open_count(project=project) == 2
    assert QueueItem.objects.filter(status=QueueStatus.CLAIMED).count() == 2


def test_lease_renew_extends_only_the_analysts_claims(project) -> None:
    """Renewal moves the lease of the analyst's own claimed items and nobody else's."""
    queued_items(project, 4)
    mine, other = AnalystFactory(), AnalystFactory()
    now = timezone.now()
    held = queue_claim_next(project=project, analyst=mine, now=now)
    theirs = queue_claim_next(project=project, analyst=other, now=now)
    later = now + timedelta(minutes=9)
    ids = [held.current.pk, held.next.pk, theirs.current.pk]
    assert queue_lease_renew(analyst=mine, item_ids=ids, now=later) == 2
    held.current.refresh_from_db()
    theirs.current.refresh_from_db()
    assert held.current.lease_expires_at == later + timedelta(seconds=lease_seconds())
    assert theirs.current.lease_expires_at == now + timedelta(seconds=lease_seconds())


def test_held_items_keep_their_order_and_front_items_come_first(project) -> None:
    """Held items come back oldest claim first, except those an undo put in front."""
    items = queued_items(project, 3, priorities=[3, 2, 1])
    analyst = AnalystFactory()
    queue_claim_next(project=project, analyst=analyst)
    now = timezone.now()
    QueueItem.objects.filter(pk=items[2].pk).update(
        status=QueueStatus.CLAIMED, assigned_to=analyst, claimed_at=now, front_at=now
    )
    result = queue_claim_next(project=project, analyst=analyst)
    assert (result.current.pk, result.next.pk) == (items[2].pk, items[0].pk)
    assert [i.pk for i in queue_items_held(project=project, analyst=analyst)] == [
        items[2].pk,
        items[0].pk,
        items[1].pk,
    ]


def test_evaluation_items_arrive_at_the_asked_fraction() -> None:
    """Over a few hundred claims the share of evaluation items is the project's fraction."""
    project = ProjectFactory(evaluation_fraction=0.25, split_seed=11)
    rng = random.Random(1)
    _bulk_items(project, 400, split=Split.EVAL, priorities=[rng.random() for _ in range(400)])
    _bulk_items(project, 900, split=Split.POOL, priorities=[rng.random() for _ in range(900)])
    analysts = [AnalystFactory() for _ in range(4)]
    served = []
    for _ in range(200):
        for analyst in analysts:
            result = queue_claim_next(project=project, analyst=analyst)
            served.append(result.current.kind == "evaluation")
            _done(result.current)
    # 800 draws at p = 0.25: one standard deviation is 0.015, so 0.06 is about 4 of them
    # (the draws depend on analyst ids, which differ between databases and test orders).
    assert abs(sum(served) / len(served) - 0.25) < 0.06


def test_evaluation_items_are_served_in_an_order_uncorrelated_with_priority() -> None:
    """Evaluation items ignore priority (a model's score); pool items follow it."""
    project = ProjectFactory(evaluation_fraction=0.8, split_seed=5)
    rng = random.Random(2)
    _bulk_items(project, 1000, split=Split.EVAL, priorities=[rng.random() for _ in range(1000)])
    _bulk_items(project, 300, split=Split.POOL, priorities=[rng.random() for _ in range(300)])
    analyst = AnalystFactory()
    served = []
    for _ in range(1000):
        item = queue_claim_next(project=project, analyst=analyst).current
        served.append(item)
        _done(item)
    evals = [i.priority for i in served if i.kind == "evaluation"]
    pool = [i.priority for i in served if i.kind != "evaluation"]
    assert len(evals) > 700
    rho_eval = spearmanr(range(len(evals)), evals).statistic
    assert abs(rho_eval) < 0.1
    assert spearmanr(range(len(pool)), pool).statistic < -0.99  # best first


def test_one_kind_running_out_falls_back_to_the_other() -> None:
    """With no pool items left every claim serves evaluation items, and the reverse."""
    project = ProjectFactory(evaluation_fraction=0.0)
    (eval_item,) = queued_items(project, 1, split=Split.EVAL)
    assert queue_claim_next(project=project, analyst=AnalystFactory()).current.pk == eval_item.pk
    project = ProjectFactory(evaluation_fraction=1.0)
    (pool_item,) = queued_items(project, 1)
    assert queue_claim_next(project=project, analyst=AnalystFactory()).current.pk == pool_item.pk


def test_items_create_skips_queued_cases_and_continues_slots(project) -> None:
    """Queueing a case twice never doubles its items; a requeue takes the next free slots."""
    case = CaseFactory(project=project, split=Split.EVAL)
    other_project_case = CaseFactory()
    first = queue_items_create(
        project=project,
        entries=[QueueEntry(case.pk, 0.7, {"strategy": "margin"}), (other_project_case.pk,)],
    )
    assert [(i.slot, i.kind == "evaluation", i.priority) for i in first] == [(0, True, 0.7)]
    assert queue_items_create(project=project, entries=[(case.pk,)]) == []
    QueueItem.objects.filter(pk=first[0].pk).update(status="done", assigned_to=AnalystFactory())
    again = queue_items_create(project=project, entries=[(case.pk,)])
    assert [i.slot for i in again] == [1]


def test_random_fill_queues_cases_without_items_with_overlap_and_split(project) -> None:
    """The random fill tops up a low queue: eval cases give eval items, a share gets overlap."""
    project.batch_size, project.overlap, project.overlap_fraction = 10, 2, 0.5
    project.save()
    for i in range(60):
        CaseFactory(project=project, split=Split.EVAL if i % 4 == 0 else Split.POOL)
    created = queue_fill_random(project=project, seed=1)
    items = list(QueueItem.objects.filter(project=project))
    assert created == len(items) > 40
    by_case: dict[int, list[QueueItem]] = {}
    for item in items:
        by_case.setdefault(item.case_id, []).append(item)
    assert len(by_case) == 40  # 4 x batch size cases
    assert {len(v) for v in by_case.values()} == {1, 2}
    for case_items in by_case.values():
        split = Case.objects.get(pk=case_items[0].case_id).split
        assert all((i.kind == "evaluation") == (split == Split.EVAL) for i in case_items)
    assert queue_fill_random(project=project) == 0  # not low any more


def test_random_fill_scans_an_index_from_a_random_start_and_wraps_around(project) -> None:
    """No random sort of the whole table: a hash-ordered scan from a random point, wrapping
    around; only cases without a non-cancelled item are taken, evaluation and pool alike."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    project.overlap_fraction = 0.0
    project.save()
    cases = [
        CaseFactory(project=project, split=Split.EVAL if i % 3 == 0 else Split.POOL)
        for i in range(30)
    ]
    queued, done, cancelled = cases[0], cases[1], cases[2]
    queue_items_create(project=project, entries=[(queued.pk,), (done.pk,), (cancelled.pk,)])
    QueueItem.objects.filter(case=done).update(status="done", assigned_to=AnalystFactory())
    QueueItem.objects.filter(case=cancelled).update(status="cancelled")
    for seed in range(5):  # every random start finds all of them, wrapping around the end
        with CaptureQueriesContext(connection) as queries:
            created = queue_fill_random(project=project, cases=100, seed=seed)
        assert created == 28
        sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
        assert not re.search(r"\bRAND(OM)?\(", sql)  # RANDOM() on PostgreSQL, RAND() SQLite
        taken = set(
            QueueItem.objects.filter(reason__strategy="random").values_list("case_id", flat=True)
        )
        assert taken == {c.pk for c in cases} - {queued.pk, done.pk}
        assert {c.split for c in cases if c.pk in taken} == {Split.EVAL, Split.POOL}
        QueueItem.objects.filter(reason__strategy="random").delete()
    picks = set()
    for seed in range(20):  # different starts take different cases
        queue_fill_random(project=project, cases=3, seed=seed)
        picks |= set(
            QueueItem.objects.filter(reason__strategy="random").values_list("case_id", flat=True)
        )
        QueueItem.objects.filter(reason__strategy="random").delete()
    assert len(picks) > 10


def test_a_claim_on_an_empty_queue_fills_it_with_random_cases(project) -> None:
    """Until the pipeline exists, an empty queue is filled with random cases on demand."""
    CaseFactory.create_batch(3, project=project)
    result = queue_claim_next(project=project, analyst=AnalystFactory())
    assert result.current is not None and result.next is not None
    assert QueueItem.objects.filter(project=project).count() == 3


def _facts(suggestion, p: float, second: float, other) -> ModelFacts:
    return ModelFacts(
        model_version_id=None,
        suggestion_id=suggestion.pk,
        suggestion_p=p,
        alternatives=((other.pk, second),),
    )


def _slots(items: list[QueueItem]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for item in items:
        counts[item.case_id] = counts.get(item.case_id, 0) + 1
    return counts


@pytest.fixture
def tiers(project):
    ok = LabelClassFactory(project=project, tier=Tier.SUPPORTABLE)
    bad = LabelClassFactory(project=project, tier=Tier.PROHIBITED)
    return ok, bad


def test_noise_aware_overlap_gives_unsure_and_prohibited_picks_a_second_slot(
    project, tiers
) -> None:
    """A low-margin pick, a prohibited suggestion and a prohibited given label get two slots;
    the reason's details say so, its sentences do not; confident picks and eval cases get one."""
    ok, bad = tiers
    project.overlap_budget = 0.5
    project.save()
    cases = [CaseFactory(project=project, given_label=ok) for _ in range(8)]
    cases[2].given_label = bad
    cases[2].save()
    evaluation = CaseFactory(project=project, split=Split.EVAL, given_label=bad)
    reason = PickReason(strategy="margin", sentence="Torn.", sentence_blind="Torn.")
    facts = [_facts(ok, 0.9, 0.05, bad) for _ in cases]
    facts[0] = _facts(ok, 0.5, 0.4, bad)  # margin 0.1 < 0.2
    facts[1] = _facts(bad, 0.95, 0.01, ok)  # a prohibited suggestion, however sure
    entries = [
        QueueEntry(c.pk, 1.0, reason, None, [], f) for c, f in zip(cases, facts, strict=True)
    ]
    entries.append(QueueEntry(evaluation.pk, 1.0, reason, None, [], _facts(ok, 0.5, 0.45, bad)))
    created = queue_items_create(project=project, entries=entries)
    counts = _slots(created)
    assert {c for c, n in counts.items() if n == 2} == {cases[0].pk, cases[1].pk, cases[2].pk}
    assert counts[evaluation.pk] == 1
    by_case = {c.pk: [i for i in created if i.case_id == c.pk] for c in cases[:3]}
    first, extra = sorted(by_case[cases[0].pk], key=lambda i: i.slot)
    assert first.reason["details"][NOISE_AWARE] == {
        "margin": 0.1,
        "prohibited": False,
        "extra_slot": False,
    }
    assert extra.reason["details"][NOISE_AWARE]["extra_slot"] is True
    assert by_case[cases[1].pk][0].reason["details"][NOISE_AWARE]["prohibited"] is True
    assert by_case[cases[2].pk][0].reason["details"][NOISE_AWARE] == {
        "margin": 0.85,
        "prohibited": True,
        "extra_slot": False,
    }
    assert all(i.reason["sentence"] == "Torn." for i in created)
    assert all(NOISE_AWARE not in i.reason["details"] for i in created if counts[i.case_id] == 1)


def test_the_overlap_budget_bounds_noise_aware_picks_prohibited_then_lowest_margin_first(
    project, tiers
) -> None:
    """At most overlap_budget of the call's pool cases get the extra slot: prohibited picks
    first, then the lowest margins."""
    ok, bad = tiers
    project.overlap_budget = 0.3
    project.save()
    cases = [CaseFactory(project=project, given_label=ok) for _ in range(10)]
    margins = [0.19, 0.02, 0.15, 0.05, 0.18, 0.11, 0.12, 0.16, 0.17, 0.14]
    facts = [_facts(ok, 0.5, 0.5 - m, bad) for m in margins]
    facts[0] = _facts(bad, 0.5, 0.31, ok)  # prohibited, margin 0.19
    entries = [QueueEntry(c.pk, 1.0, {}, None, [], f) for c, f in zip(cases, facts, strict=True)]
    counts = _slots(queue_items_create(project=project, entries=entries))
    assert {c for c, n in counts.items() if n == 2} == {cases[0].pk, cases[1].pk, cases[3].pk}


def test_noise_aware_overlap_off_or_without_budget_adds_nothing(project, tiers) -> None:
    """With the setting off (or a zero budget) every pick keeps the random overlap draw's slots."""
    ok, bad = tiers
    for setting in ({"noise_aware_overlap": False}, {"overlap_budget": 0.0}):
        for name, value in setting.items():
            setattr(project, name, value)
        project.save()
        cases = [CaseFactory(project=project, given_label=bad) for _ in range(5)]
        entries = [QueueEntry(c.pk, 1.0, {}, None, [], _facts(bad, 0.4, 0.39, ok)) for c in cases]
        created = queue_items_create(project=project, entries=entries)
        assert len(created) == 5
        assert all(NOISE_AWARE not in i.reason["details"] for i in created)


def test_noise_aware_overlap_adds_on_top_of_the_random_overlap_draw(project, tiers) -> None:
    """A pick the random draw already gave k >= 2 slots keeps k and takes no budget."""
    ok, bad = tiers
    project.overlap, project.overlap_fraction, project.overlap_budget = 3, 1.0, 1.0
    project.save()
    case = CaseFactory(project=project, given_label=bad)
    created = queue_items_create(
        project=project,
        entries=[QueueEntry(case.pk, 1.0, {}, None, [], _facts(ok, 0.5, 0.49, bad))],
    )
    assert len(created) == 3
    assert all(NOISE_AWARE not in i.reason["details"] for i in created)
    project.overlap_fraction = 0.0
    project.save()
    without_facts = CaseFactory(project=project, given_label=bad)  # a random or cold-start pick
    assert len(queue_items_create(project=project, entries=[(without_facts.pk,)])) == 2


def test_evaluation_overlap_gives_evaluation_cases_one_item_by_default_and_two_at_2(
    project,
) -> None:
    """An eval-split case gets `evaluation_overlap` items: one by default; at 2, two sharing one
    serve key, while pool and decision entries are unchanged."""
    assert project.evaluation_overlap == 1 and project.overlap_fraction == 0.0
    single = CaseFactory(project=project, split=Split.EVAL)
    (item,) = queue_items_create(project=project, entries=[(single.pk,)])
    assert (item.kind, item.slot) == ("evaluation", 0)
    project.evaluation_overlap = 2
    project.save()
    evaluation = CaseFactory(project=project, split=Split.EVAL)
    pool = CaseFactory(project=project)
    decided = CaseFactory(project=project, split=Split.EVAL)
    created = queue_items_create(
        project=project,
        entries=[(evaluation.pk,), (pool.pk,), QueueEntry(decided.pk, kind="adjudication")],
    )
    slots = {(i.case_id, i.kind, i.slot) for i in created}
    assert slots == {
        (evaluation.pk, "evaluation", 0),
        (evaluation.pk, "evaluation", 1),
        (pool.pk, "pool", 0),
        (decided.pk, "adjudication", 0),
    }
    keys = {i.random_key for i in created if i.case_id == evaluation.pk}
    assert len(keys) == 1  # served one after the other


def test_evaluation_overlap_is_a_floor_under_the_random_overlap_draw(project) -> None:
    """An eval case the overlap draw gives more slots keeps them; pool cases get no floor."""
    project.overlap, project.overlap_fraction, project.evaluation_overlap = 3, 1.0, 2
    project.save()
    evaluation, pool = CaseFactory(project=project, split=Split.EVAL), CaseFactory(project=project)
    created = queue_items_create(project=project, entries=[(evaluation.pk,), (pool.pk,)])
    assert _slots(created) == {evaluation.pk: 3, pool.pk: 3}
    project.overlap_fraction, project.evaluation_overlap = 0.0, 4
    project.save()
    evaluation, pool = CaseFactory(project=project, split=Split.EVAL), CaseFactory(project=project)
    created = queue_items_create(project=project, entries=[(evaluation.pk,), (pool.pk,)])
    assert _slots(created) == {evaluation.pk: 4, pool.pk: 1}


def test_one_analyst_never_claims_both_evaluation_slots_of_a_case() -> None:
    """Claims draw evaluation items only here: the analyst takes one slot of the case, then
    falls back to a pool item rather than the case's second slot, before and after answering;
    a second analyst takes that slot."""
    project = ProjectFactory(evaluation_fraction=1.0, evaluation_overlap=2)
    case = CaseFactory(project=project, split=Split.EVAL)
    evaluation = queue_items_create(project=project, entries=[(case.pk,)])
    assert len(evaluation) == 2
    pool = queued_items(project, 3, priorities=[3, 2, 1])
    first = AnalystFactory()
    claim = queue_claim_next(project=project, analyst=first, refill=False)
    assert claim.current.case_id == case.pk and claim.current.kind == "evaluation"
    assert claim.next.pk == pool[0].pk
    _done(claim.current)
    _done(claim.next)
    after = queue_claim_next(project=project, analyst=first, refill=False)
    assert {after.current.pk, after.next.pk} == {pool[1].pk, pool[2].pk}
    second = queue_claim_next(project=project, analyst=AnalystFactory(), refill=False)
    assert second.current.case_id == case.pk and second.current.pk != claim.current.pk
    holders = QueueItem.objects.filter(case=case).values_list("assigned_to", flat=True)
    assert len(set(holders)) == 2
