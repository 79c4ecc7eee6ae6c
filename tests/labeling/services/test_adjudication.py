"""Adjudication: ties ask for it at once and keep the earlier label; its decision outranks
consensus and review; the consensus step's items are refreshed. On an evaluation case a tie's
item shows no model's view, and its decision is the case's evaluation label."""

from __future__ import annotations

import uuid

import pytest

from active_learning.selectors import evaluation_set
from labeling.contracts import ModelFacts, PickReason
from labeling.models import (
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolutionSource,
    ResolvedLabel,
    Split,
    Tier,
)
from labeling.services.adjudication import (
    TIE,
    UNCERTAIN,
    AdjudicationWanted,
    adjudication_items_refresh,
)
from labeling.services.annotations import Verdict, annotation_submit, annotation_undo, review_submit
from labeling.services.queue import QueueEntry, queue_claim_next, queue_items_create
from labeling.services.review_requests import SECOND_OPINION
from tests.factories import AnalystFactory, CaseFactory, LabelClassFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def classes(project):
    return (
        LabelClassFactory(project=project, tier=Tier.SUPPORTABLE),
        LabelClassFactory(project=project, tier=Tier.PROHIBITED),
        LabelClassFactory(project=project, tier=Tier.RESTRICTED),
    )


@pytest.fixture
def case(project, classes):
    return CaseFactory(project=project, given_label=classes[0])


def _label(case, label, analyst=None):
    return annotation_submit(
        item_or_case=case,
        analyst=analyst or AnalystFactory(),
        submission_id=uuid.uuid4(),
        label=label,
    )


def _adjudication_items(case, status=(QueueStatus.OPEN, QueueStatus.CLAIMED)):
    return list(QueueItem.objects.filter(case=case, kind=QueueKind.ADJUDICATION, status__in=status))


def _resolved(case) -> ResolvedLabel:
    return ResolvedLabel.objects.get(case=case)


def test_a_tie_keeps_the_earlier_label_and_queues_one_adjudication(case, classes) -> None:
    """Analyst 1 says restricted, analyst 2 supportable: the case stays restricted and one
    adjudication item asks a reviewer; a third analyst breaking the tie queues no second one."""
    _label(case, classes[2])
    assert not _adjudication_items(case)
    _label(case, classes[0])
    resolved = _resolved(case)
    assert (resolved.label, resolved.source) == (classes[2], ResolutionSource.ANNOTATION)
    items = _adjudication_items(case)
    assert len(items) == 1 and items[0].reason["strategy"] == TIE
    _label(case, classes[0])
    assert _resolved(case).label == classes[0]
    _label(case, classes[2])  # tied again, 2-2: still one item
    assert len(_adjudication_items(case)) == 1


def test_undoing_a_label_that_leaves_a_tie_queues_an_adjudication(case, classes) -> None:
    """A, A, B; the second A is taken back: A-B tie, A stands, a reviewer is asked."""
    _label(case, classes[1])
    analyst = AnalystFactory()
    _label(case, classes[1], analyst=analyst)
    _label(case, classes[2])
    assert not _adjudication_items(case)
    annotation_undo(analyst=analyst, project=case.project)
    assert _resolved(case).label == classes[1]
    assert len(_adjudication_items(case)) == 1


def test_the_adjudication_beats_consensus_and_later_analyst_labels(project, case, classes) -> None:
    """A reviewer takes the tie's item first and decides: source adjudicated, which a consensus
    resolution and a later analyst label do not override."""
    _label(case, classes[2])
    _label(case, classes[0])
    reviewer = AnalystFactory()
    claimed = queue_claim_next(project=project, analyst=reviewer, role="reviewer")
    assert claimed.current is not None and claimed.current.kind == QueueKind.ADJUDICATION
    review_submit(
        item=claimed.current,
        reviewer=reviewer,
        submission_id=uuid.uuid4(),
        verdict=Verdict.RELABEL,
        label=classes[1],
    )
    resolved = _resolved(case)
    assert (resolved.label, resolved.source) == (classes[1], ResolutionSource.ADJUDICATED)
    _label(case, classes[0])
    assert _resolved(case).source == ResolutionSource.ADJUDICATED
    assert _resolved(case).label == classes[1]


def test_the_consensus_steps_items_are_refreshed(project, classes) -> None:
    """Wanted cases get one item each; a case no longer wanted loses its open item; a decided
    case and a tie's item are left alone."""
    a, b, decided = (CaseFactory(project=project, given_label=classes[0]) for _ in range(3))
    ResolvedLabel.objects.create(case=decided, label=classes[0], source=ResolutionSource.REVIEW)
    wanted = [
        AdjudicationWanted(c.pk, UNCERTAIN, "Consensus is unsure.", 0.4, classes[1].pk, 0.6)
        for c in (a, b, decided)
    ]
    assert adjudication_items_refresh(project=project, wanted=wanted) == {
        "created": 2,
        "taken_over": 0,
        "cancelled": 0,
    }
    item = _adjudication_items(a)[0]
    assert (item.suggestion_id, item.suggestion_p, item.priority) == (classes[1].pk, 0.6, 0.4)
    assert not _adjudication_items(decided)
    _label(b, classes[2])
    _label(b, classes[0])  # a tie on b: its item already exists (one per case)
    again = adjudication_items_refresh(project=project, wanted=wanted[1:2])
    assert again == {"created": 0, "taken_over": 0, "cancelled": 1}
    assert not _adjudication_items(a) and len(_adjudication_items(b)) == 1


def test_undoing_an_adjudication_on_a_tied_case_leaves_no_decision(project, case, classes) -> None:
    """Tied analysts, an adjudication, then the adjudicator's undo: the decision is gone (the
    tie gives no label) instead of being kept as the tie's "earlier label"."""
    from labeling.services.annotations import annotation_undo

    _label(case, classes[2])
    _label(case, classes[0])
    reviewer = AnalystFactory()
    item = queue_claim_next(project=project, analyst=reviewer, role="reviewer").current
    review_submit(
        item=item,
        reviewer=reviewer,
        submission_id=uuid.uuid4(),
        verdict=Verdict.RELABEL,
        label=classes[1],
    )
    assert _resolved(case).source == ResolutionSource.ADJUDICATED
    annotation_undo(analyst=reviewer, project=project)
    resolved = _resolved(case)
    assert resolved.source == ResolutionSource.ANNOTATION and resolved.label is None
    assert len(_adjudication_items(case)) == 1  # the reviewer holds it again


def test_a_tie_keeps_only_a_label_someone_still_gives(case, classes) -> None:
    """X then Y tie (X kept); the X analyst changes to Z: a three-way tie where nobody says X
    any more, so X is not kept."""
    from labeling.services.annotations import annotation_edit

    first = AnalystFactory()
    mine = _label(case, classes[0], analyst=first)
    _label(case, classes[1])
    assert _resolved(case).label == classes[0]
    annotation_edit(annotation=mine, analyst=first, submission_id=uuid.uuid4(), label=classes[2])
    assert _resolved(case).label is None


def test_a_dispute_on_an_adjudicated_case_keeps_its_item_open(project, case, classes) -> None:
    """An analyst disputes the given label while an 'unsure consensus' adjudication is open:
    the item now answers the dispute too, and a later, sure consensus does not cancel it."""
    wanted = [AdjudicationWanted(case.pk, UNCERTAIN, "Unsure.", 0.4, None, None)]
    adjudication_items_refresh(project=project, wanted=wanted)
    _label(case, classes[1], analyst=AnalystFactory())  # given is classes[0]: a dispute
    assert adjudication_items_refresh(project=project, wanted=[])["cancelled"] == 0
    assert len(_adjudication_items(case)) == 1


# Evaluation cases with two analysts per evaluation draw (`Project.evaluation_overlap` = 2, not
# the default); a tie goes to a reviewer without any model's view, and that decision is the
# case's evaluation label.


@pytest.fixture
def drawn(project, classes):
    """An eval-split case drawn for evaluation (given label classes[0]): its two items carry a
    champion's suggestion (classes[1]), as evaluation items do (their cards never show it);
    claims draw evaluation items."""
    project.evaluation_fraction, project.evaluation_overlap = 1.0, 2
    project.save()
    case = CaseFactory(project=project, split=Split.EVAL, given_label=classes[0])
    facts = ModelFacts(model_version_id=7, suggestion_id=classes[1].pk, suggestion_p=0.9)
    entry = QueueEntry(case.pk, 0.0, PickReason(strategy="random"), 7, [], facts)
    items = queue_items_create(project=project, entries=[entry])
    assert [(i.kind, i.suggestion_id) for i in items] == [(QueueKind.EVALUATION, classes[1].pk)] * 2
    return case


def _answer(project, case, label, analyst=None):
    """An analyst claims their next item (the drawn case's) and labels it."""
    analyst = analyst or AnalystFactory()
    item = queue_claim_next(project=project, analyst=analyst, refill=False).current
    assert item is not None and item.case_id == case.pk and item.kind == QueueKind.EVALUATION
    return annotation_submit(
        item_or_case=item, analyst=analyst, submission_id=uuid.uuid4(), label=label
    )


def _evaluation_labels(project) -> dict[int, int]:
    labels = evaluation_set(project=project)
    return dict(zip(labels.case_ids.tolist(), labels.labels.tolist(), strict=True))


def _adjudicate(project, label, item=None, reviewer=None):
    reviewer = reviewer or AnalystFactory()
    if item is None:
        item = queue_claim_next(project=project, analyst=reviewer, role="reviewer").current
    assert item is not None and item.kind == QueueKind.ADJUDICATION
    return review_submit(
        item=item,
        reviewer=reviewer,
        submission_id=uuid.uuid4(),
        verdict=Verdict.RELABEL,
        label=label,
    )


def test_two_agreeing_analysts_give_the_evaluation_label(project, classes, drawn) -> None:
    """Both evaluation slots answered alike: that is the case's evaluation label; no reviewer
    is asked."""
    _answer(project, drawn, classes[2])
    _answer(project, drawn, classes[2])
    assert not _adjudication_items(drawn)
    assert _evaluation_labels(project) == {drawn.pk: classes[2].pk}


def test_disagreeing_analysts_of_an_evaluation_case_ask_for_a_decision_without_the_model(
    project, classes, drawn
) -> None:
    """A tie on an eval-split case makes its adjudication item in the label's transaction, with
    no model facts although the analysts' cards carried the champion's; until it is decided
    the tie gives no evaluation label (not the earlier label the resolution keeps, nor a
    consensus the retrain may set)."""
    _answer(project, drawn, classes[0])  # the given label
    _answer(project, drawn, classes[2])
    (item,) = _adjudication_items(drawn)
    assert item.reason["strategy"] == TIE
    assert (item.suggestion_id, item.suggestion_p, item.alternatives) == (None, None, [])
    assert item.model_version_id is None
    resolved = _resolved(drawn)
    assert (resolved.label, resolved.source) == (classes[0], ResolutionSource.ANNOTATION)
    assert drawn.pk not in _evaluation_labels(project)
    ResolvedLabel.objects.filter(case=drawn).update(source=ResolutionSource.CONSENSUS)
    assert drawn.pk not in _evaluation_labels(project)


def test_a_tie_on_a_pool_case_keeps_the_items_model_facts(project, classes) -> None:
    """Outside the evaluation split a tie's item shows what the labelled item showed (no given
    label here, so no second opinion is asked first)."""
    case = CaseFactory(project=project, given_label=None)
    project.overlap, project.overlap_fraction = 2, 1.0
    project.save()
    facts = ModelFacts(model_version_id=7, suggestion_id=classes[1].pk, suggestion_p=0.9)
    queue_items_create(project=project, entries=[QueueEntry(case.pk, 1.0, {}, 7, [], facts)])
    for label in (classes[0], classes[2]):
        analyst = AnalystFactory()
        item = queue_claim_next(project=project, analyst=analyst, refill=False).current
        assert item.case_id == case.pk
        annotation_submit(
            item_or_case=item, analyst=analyst, submission_id=uuid.uuid4(), label=label
        )
    (item,) = _adjudication_items(case)
    assert (item.suggestion_id, item.model_version_id) == (classes[1].pk, 7)


def test_a_dispute_on_an_evaluation_case_asks_for_a_decision_without_the_model(
    project, classes
) -> None:
    """One analyst's evaluation label that disputes the given label asks at once for an
    adjudication without model facts (not a review beside the detector's suggestion); the
    analyst's label counts until it is decided, then the decision does; an undo of the
    disputing label withdraws the item. A label agreeing with the given label asks nothing."""
    from active_learning.models import LabelIssue

    project.evaluation_fraction = 1.0
    project.save()
    agreed, disputed = (
        CaseFactory(project=project, split=Split.EVAL, given_label=classes[0]) for _ in range(2)
    )
    facts = ModelFacts(model_version_id=7, suggestion_id=classes[1].pk, suggestion_p=0.9)
    analyst = AnalystFactory()
    for case, label in ((agreed, classes[0]), (disputed, classes[2])):  # one queued at a time
        LabelIssue.objects.create(
            project=project, case=case, given_label=classes[0], suggested_label=classes[1],
            suggested_p=0.8, score=0.9, self_confidence=0.1,
        )  # fmt: skip
        queue_items_create(project=project, entries=[QueueEntry(case.pk, 1.0, {}, 7, [], facts)])
        _answer(project, case, label, analyst=analyst)
    decisions = (QueueKind.REVIEW, QueueKind.ADJUDICATION)
    assert not QueueItem.objects.filter(case=agreed, kind__in=decisions).exists()
    assert not QueueItem.objects.filter(case=disputed, kind=QueueKind.REVIEW).exists()
    (item,) = _adjudication_items(disputed)
    assert item.reason["strategy"] == SECOND_OPINION
    assert (item.suggestion_id, item.suggestion_p, item.alternatives) == (None, None, [])
    assert item.model_version_id is None
    assert _evaluation_labels(project) == {agreed.pk: classes[0].pk, disputed.pk: classes[2].pk}
    annotation_undo(analyst=analyst, project=project)
    item.refresh_from_db()
    assert item.status == QueueStatus.CANCELLED
    _answer(project, disputed, classes[2], analyst=analyst)
    _adjudicate(project, classes[1])
    assert _resolved(disputed).source == ResolutionSource.ADJUDICATED
    assert _evaluation_labels(project) == {agreed.pk: classes[0].pk, disputed.pk: classes[1].pk}


def test_with_two_analysts_per_evaluation_case_a_dispute_waits_for_the_second(
    project, classes, drawn
) -> None:
    """At `evaluation_overlap` 2 a dispute asks nothing at once (no review beside a model's
    suggestion either): the second analyst's answer settles the label or ties it, and a tie's
    blind adjudication decides it."""
    _answer(project, drawn, classes[2])
    assert not QueueItem.objects.filter(
        case=drawn, kind__in=[QueueKind.REVIEW, QueueKind.ADJUDICATION]
    ).exists()
    _answer(project, drawn, classes[0])
    (item,) = _adjudication_items(drawn)
    assert item.reason["strategy"] == TIE and item.suggestion_id is None
    assert drawn.pk not in _evaluation_labels(project)
    _adjudicate(project, classes[2])
    assert _evaluation_labels(project) == {drawn.pk: classes[2].pk}


def test_the_reviewers_decision_of_an_evaluation_tie_is_the_evaluation_label(
    project, classes, drawn
) -> None:
    """The tie's decision (source adjudicated, made without a model's view) counts; an undo
    takes it back out."""
    from labeling.services.annotations import annotation_undo

    _answer(project, drawn, classes[0])
    _answer(project, drawn, classes[2])
    decision = _adjudicate(project, classes[1])
    resolved = _resolved(drawn)
    assert (resolved.label, resolved.source) == (classes[1], ResolutionSource.ADJUDICATED)
    labels = evaluation_set(project=project)
    assert labels.case_ids.tolist() == [drawn.pk] and labels.labels.tolist() == [classes[1].pk]
    assert labels.from_analyst.all()
    annotation_undo(analyst=decision.annotation.annotator, project=project)
    assert drawn.pk not in _evaluation_labels(project)


def test_an_open_adjudication_loses_its_suggestion_when_the_evaluation_tie_comes(
    project, classes, drawn
) -> None:
    """The consensus step's adjudication (with a suggestion) is open when the second analyst
    ties: it stays the case's one decision item but drops its model facts, so its decision is
    the evaluation label."""
    _answer(project, drawn, classes[0])
    wanted = [AdjudicationWanted(drawn.pk, UNCERTAIN, "Unsure.", 0.4, classes[1].pk, 0.7)]
    assert adjudication_items_refresh(project=project, wanted=wanted)["created"] == 1
    _answer(project, drawn, classes[2])
    (item,) = _adjudication_items(drawn)
    assert item.reason["strategy"] == UNCERTAIN
    assert (item.suggestion_id, item.suggestion_p, item.alternatives) == (None, None, [])
    _adjudicate(project, classes[2])
    assert _resolved(drawn).source == ResolutionSource.ADJUDICATED
    assert _evaluation_labels(project) == {drawn.pk: classes[2].pk}


def test_a_decision_beside_a_suggestion_is_no_evaluation_label(project, classes, drawn) -> None:
    """A reviewer already holds the consensus step's adjudication (with its suggestion) when
    the tie comes: the decision is made beside the suggestion, so the evaluation label stays the
    analysts' majority: here a tie, so none."""
    _answer(project, drawn, classes[0])
    wanted = [AdjudicationWanted(drawn.pk, UNCERTAIN, "Unsure.", 0.4, classes[1].pk, 0.7)]
    assert adjudication_items_refresh(project=project, wanted=wanted)["created"] == 1
    reviewer = AnalystFactory()
    held = queue_claim_next(project=project, analyst=reviewer, role="reviewer").current
    assert held is not None and held.kind == QueueKind.ADJUDICATION
    _answer(project, drawn, classes[2])
    held.refresh_from_db()
    assert held.suggestion_id == classes[1].pk
    _adjudicate(project, classes[1], item=held, reviewer=reviewer)
    assert _resolved(drawn).source == ResolutionSource.ADJUDICATED
    assert drawn.pk not in _evaluation_labels(project)


def test_a_decision_beside_a_suggestion_leaves_the_analysts_majority(project, classes) -> None:
    """Three analysts (2-1) and an adjudication with a suggestion that picks a third class:
    the evaluation label is the majority of the analysts' labels, not the decision."""
    project.evaluation_fraction, project.evaluation_overlap = 1.0, 3
    project.save()
    # No given label: no analyst's answer asks for a second opinion (a review item).
    case = CaseFactory(project=project, split=Split.EVAL, given_label=None)
    assert len(queue_items_create(project=project, entries=[(case.pk,)])) == 3
    for label in (classes[2], classes[2], classes[0]):
        _answer(project, case, label)
    assert not _adjudication_items(case)
    wanted = [AdjudicationWanted(case.pk, UNCERTAIN, "Unsure.", 0.4, classes[1].pk, 0.7)]
    adjudication_items_refresh(project=project, wanted=wanted)
    _adjudicate(project, classes[1])
    assert _resolved(case).label == classes[1]
    assert _evaluation_labels(project) == {case.pk: classes[2].pk}
