"""Gold items: decided cases served back at the project's gold share, never to whoever answered
the case, never twice to one analyst, measured against the decision and changing nothing."""

from __future__ import annotations

import random
import uuid

import pytest

from labeling.models import (
    Annotation,
    AnnotationSource,
    Case,
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolutionSource,
    ResolvedLabel,
    Split,
    Tier,
)
from labeling.selectors import gold_case_ids, gold_results
from labeling.services.annotations import (
    Verdict,
    annotation_skip,
    annotation_submit,
    review_submit,
)
from labeling.services.queue import QueueEntry, queue_claim_next, queue_items_create
from labeling.services.queue.draws import draw_is_gold
from tests.factories import (
    AnalystFactory,
    CaseFactory,
    LabelClassFactory,
    ProjectFactory,
    QueueItemFactory,
    queued_items,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def classes(project):
    return (
        LabelClassFactory(project=project, tier=Tier.SUPPORTABLE),
        LabelClassFactory(project=project, tier=Tier.PROHIBITED),
        LabelClassFactory(project=project, tier=Tier.RESTRICTED),
    )


def _decided(project, classes, reviewer, *, label=None, split=Split.POOL) -> Case:
    """A case a reviewer decided through a review item (given label classes[0])."""
    case = CaseFactory(project=project, given_label=classes[0], split=split)
    item = QueueItemFactory(case=case, kind=QueueKind.REVIEW, slot=0)
    review_submit(
        item=item,
        reviewer=reviewer,
        submission_id=uuid.uuid4(),
        verdict=Verdict.RELABEL,
        label=label or classes[2],
    )
    return case


def _gold(*cases: Case) -> list[QueueItem]:
    project = cases[0].project
    entries = [QueueEntry(c.pk, 0.0, {"strategy": "margin"}, kind=QueueKind.GOLD) for c in cases]
    return queue_items_create(project=project, entries=entries)


def _answer(item: QueueItem, analyst, label, **flags) -> Annotation:
    return annotation_submit(
        item_or_case=item, analyst=analyst, submission_id=uuid.uuid4(), label=label, **flags
    )


def _claimed(project, analyst, role: str = "analyst") -> list[QueueItem]:
    result = queue_claim_next(project=project, analyst=analyst, role=role, refill=False)
    return [i for i in (result.current, result.next) if i is not None]


def test_the_gold_draw_is_seeded_and_at_its_share() -> None:
    """The draw is a pure function of (seed, analyst, claim number) at the asked share."""
    draws = [
        draw_is_gold(split_seed=3, analyst_id=7, claim_number=n, share=0.05) for n in range(20_000)
    ]
    assert abs(sum(draws) / len(draws) - 0.05) < 0.005
    again = [
        draw_is_gold(split_seed=3, analyst_id=7, claim_number=n, share=0.05) for n in range(200)
    ]
    assert again == draws[:200]


def _bulk_decided(project, label, reviewer, n: int) -> list[Case]:
    cases = Case.objects.bulk_create(
        Case(project=project, external_id=f"gold-{i}", text=f"g{i}", content_hash="h")
        for i in range(n)
    )
    ResolvedLabel.objects.bulk_create(
        ResolvedLabel(case=c, label=label, source=ResolutionSource.REVIEW) for c in cases
    )
    Annotation.objects.bulk_create(
        Annotation(
            case=c,
            annotator=reviewer,
            label=label,
            source=AnnotationSource.REVIEW,
            submission_id=uuid.uuid4(),
            content_hash="h",
        )
        for c in cases
    )
    return cases


def test_gold_items_are_served_at_the_projects_share_and_evaluation_is_unchanged() -> None:
    """Over 800 claims of 4 analysts, gold items are about gold_fraction of them and
    evaluation items still about evaluation_fraction (gold takes its share of the pool draws)."""
    project = ProjectFactory(evaluation_fraction=0.2, gold_fraction=0.1, split_seed=13)
    label = LabelClassFactory(project=project)
    _gold(*_bulk_decided(project, label, AnalystFactory(), 250))
    rng = random.Random(3)
    queued_items(project, 300, split=Split.EVAL, priorities=[rng.random() for _ in range(300)])
    queued_items(project, 900, priorities=[rng.random() for _ in range(900)])
    analysts = [AnalystFactory() for _ in range(4)]
    kinds = []
    for _ in range(200):
        for analyst in analysts:
            item = queue_claim_next(project=project, analyst=analyst, refill=False).current
            kinds.append(item.kind)
            QueueItem.objects.filter(pk=item.pk).update(status=QueueStatus.DONE)
    # 800 draws: one standard deviation is 0.011 for gold and 0.014 for evaluation.
    assert abs(kinds.count(QueueKind.GOLD) / len(kinds) - 0.1) < 0.045
    assert abs(kinds.count(QueueKind.EVALUATION) / len(kinds) - 0.2) < 0.06
    served = QueueItem.objects.filter(kind=QueueKind.GOLD, status=QueueStatus.DONE)
    pairs = list(served.values_list("case_id", "assigned_to_id"))
    assert len(pairs) == len(set(pairs))  # no analyst got one gold case twice


def test_gold_off_serves_none_and_draws_as_before(project, classes) -> None:
    """With gold_fraction 0 a gold item is never served; the claim is the one it was."""
    project.gold_fraction, project.evaluation_fraction = 0.0, 0.0
    project.save()
    _gold(_decided(project, classes, AnalystFactory()))
    queued_items(project, 3)
    analyst = AnalystFactory()
    for _ in range(3):
        (item,) = _claimed(project, analyst)[:1]
        assert item.kind == QueueKind.POOL
        QueueItem.objects.filter(pk=item.pk).update(status=QueueStatus.DONE)


def test_gold_never_goes_to_the_decider_or_an_analyst_who_labelled_the_case(
    project, classes
) -> None:
    """The reviewer who decided a case and an analyst who labelled it never get it as gold."""
    project.gold_fraction, project.evaluation_fraction = 1.0, 0.0
    project.save()
    reviewer, labeller, other = AnalystFactory(), AnalystFactory(), AnalystFactory()
    first = _decided(project, classes, reviewer)
    second = CaseFactory(project=project, given_label=classes[0])
    _answer(QueueItemFactory(case=second, slot=0), labeller, classes[1])
    review_submit(  # the second opinion the labeller's dispute asked for
        item=QueueItem.objects.get(case=second, kind=QueueKind.REVIEW),
        reviewer=AnalystFactory(),
        submission_id=uuid.uuid4(),
        verdict=Verdict.CONFIRM,
    )
    gold = {i.case_id: i for i in _gold(first, second)}
    queued_items(project, 4)
    # A reviewer labelling pool draws gold too, but not the case they decided.
    taken = _claimed(project, reviewer, role="reviewer")
    assert [i.case_id for i in taken if i.kind == QueueKind.GOLD] == [second.pk]
    taken = _claimed(project, labeller)
    assert [i.kind for i in taken] == [QueueKind.GOLD, QueueKind.POOL]
    assert taken[0].pk == gold[first.pk].pk
    assert [i.kind for i in _claimed(project, other)] == [QueueKind.POOL, QueueKind.POOL]


def test_one_analyst_never_gets_one_gold_case_twice(project, classes) -> None:
    """Answered or skipped, a gold case never comes back to that analyst, even as a new item;
    another analyst gets it."""
    project.gold_fraction, project.evaluation_fraction = 1.0, 0.0
    project.save()
    reviewer = AnalystFactory()
    answered, skipped = (_decided(project, classes, reviewer) for _ in range(2))
    _gold(answered, skipped)
    queued_items(project, 6)
    analyst = AnalystFactory()
    held = {i.case_id: i for i in _claimed(project, analyst)}
    assert set(held) == {answered.pk, skipped.pk}
    _answer(held[answered.pk], analyst, classes[2])
    annotation_skip(item=held[skipped.pk], analyst=analyst, submission_id=uuid.uuid4())
    again = _gold(answered)  # a new gold item of the case, for others
    assert len(again) == 1
    for _ in range(3):
        for item in _claimed(project, analyst):
            assert item.kind == QueueKind.POOL
            QueueItem.objects.filter(pk=item.pk).update(status=QueueStatus.DONE)
    other = AnalystFactory()
    assert {i.case_id for i in _claimed(project, other)} == {answered.pk, skipped.pk}


def test_a_gold_answer_changes_no_resolution_and_asks_no_second_opinion(project, classes) -> None:
    """An analyst's answer on a gold item is an ordinary queue annotation of the item; the
    decision outranks it, and a dispute of the given label asks no reviewer."""
    project.gold_fraction, project.evaluation_fraction = 1.0, 0.0
    project.save()
    case = _decided(project, classes, AnalystFactory())
    before = ResolvedLabel.objects.get(case=case)
    (gold,) = _gold(case)
    analyst = AnalystFactory()
    (item,) = _claimed(project, analyst)
    assert item.pk == gold.pk
    answer = _answer(item, analyst, classes[1], noise_flag=True)
    assert (answer.source, answer.queue_item_id) == (AnnotationSource.QUEUE, gold.pk)
    gold.refresh_from_db()
    assert (gold.status, gold.assigned_to_id) == (QueueStatus.DONE, analyst.pk)
    after = ResolvedLabel.objects.get(case=case)
    assert (after.label_id, after.source, after.excluded, after.doubtful) == (
        before.label_id,
        before.source,
        before.excluded,
        before.doubtful,
    )
    assert not QueueItem.objects.filter(
        case=case, kind=QueueKind.REVIEW, status__in=[QueueStatus.OPEN, QueueStatus.CLAIMED]
    ).exists()


def test_gold_results_count_right_and_wrong_answers(project, classes) -> None:
    """Each analyst's labelled gold answers against the case's current decision; skips and
    answers outside gold items do not count."""
    project.gold_fraction, project.evaluation_fraction = 1.0, 0.0
    project.save()
    reviewer = AnalystFactory()
    one, two = (_decided(project, classes, reviewer) for _ in range(2))  # decided classes[2]
    a, b, c = AnalystFactory(), AnalystFactory(), AnalystFactory()
    first = {i.case_id: i for i in _gold(one, two)}
    _answer(first[one.pk], a, classes[2])  # right
    _answer(first[two.pk], b, classes[2])  # right
    second = {i.case_id: i for i in _gold(one, two)}
    _answer(second[one.pk], b, classes[0])  # wrong
    _answer(second[two.pk], a, classes[1])  # wrong
    third = {i.case_id: i for i in _gold(one, two)}
    annotation_skip(item=third[one.pk], analyst=c, submission_id=uuid.uuid4())
    _answer(third[two.pk], c, None, ambiguous=True)  # no label: not an answer
    plain = CaseFactory(project=project, given_label=classes[0])
    _answer(QueueItemFactory(case=plain), a, classes[1])  # a pool label: not gold
    assert gold_results(project=project) == {a.pk: (2, 1), b.pk: (2, 1)}
    # Measured against the current decision: a new decision on `one` turns the answers.
    review_submit(
        item=QueueItemFactory(case=one, kind=QueueKind.REVIEW, slot=50),
        reviewer=reviewer,
        submission_id=uuid.uuid4(),
        verdict=Verdict.CONFIRM,
    )
    assert gold_results(project=project) == {a.pk: (2, 0), b.pk: (2, 2)}


def test_gold_candidates_are_decided_labelled_pool_cases_only(project, classes) -> None:
    """Never an eval-split, excluded, undecided or busy case; a gold entry of an eval case is
    refused."""
    reviewer = AnalystFactory()
    good = _decided(project, classes, reviewer)
    evaluation = _decided(project, classes, reviewer, split=Split.EVAL)
    excluded = CaseFactory(project=project, given_label=classes[0])
    review_submit(
        item=QueueItemFactory(case=excluded, kind=QueueKind.REVIEW),
        reviewer=reviewer,
        submission_id=uuid.uuid4(),
        verdict=Verdict.EXCLUDE,
        exclude_reason="not a merchant",
    )
    labelled = CaseFactory(project=project, given_label=classes[0])
    _answer(QueueItemFactory(case=labelled), AnalystFactory(), classes[1])
    busy = _decided(project, classes, reviewer)
    QueueItemFactory(case=busy, kind=QueueKind.ADJUDICATION, slot=7)
    assert gold_case_ids(project=project, limit=10) == [good.pk]
    assert _gold(evaluation) == []
    assert [i.case_id for i in _gold(good, busy)] == [good.pk]
    assert gold_case_ids(project=project, limit=10) == []  # it has a live gold item now


def test_a_gold_item_whose_decision_was_taken_back_is_not_served(project, classes) -> None:
    """The claim serves gold only while the case is still decided with a label."""
    project.gold_fraction, project.evaluation_fraction = 1.0, 0.0
    project.save()
    case = _decided(project, classes, AnalystFactory())
    _gold(case)
    ResolvedLabel.objects.filter(case=case).update(source=ResolutionSource.ANNOTATION)
    queued_items(project, 2)
    assert [i.kind for i in _claimed(project, AnalystFactory())] == [QueueKind.POOL] * 2


def test_held_gold_items_stay_held_across_claims(project, classes) -> None:
    """A reload returns the held gold item (an analyst's role may hold gold)."""
    project.gold_fraction, project.evaluation_fraction = 1.0, 0.0
    project.save()
    _gold(_decided(project, classes, AnalystFactory()))
    queued_items(project, 3)
    analyst = AnalystFactory()
    first = _claimed(project, analyst)
    assert first[0].kind == QueueKind.GOLD
    assert [i.pk for i in _claimed(project, analyst)] == [i.pk for i in first]
