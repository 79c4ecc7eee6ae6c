"""Adjudication: ties ask for it at once and keep the earlier label; its decision outranks
consensus and review; the consensus step's items are refreshed."""

from __future__ import annotations

import uuid

import pytest

from labeling.models import (
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolutionSource,
    ResolvedLabel,
    Tier,
)
from labeling.services.adjudication import (
    TIE,
    UNCERTAIN,
    AdjudicationWanted,
    adjudication_items_refresh,
)
from labeling.services.annotations import Verdict, annotation_submit, annotation_undo, review_submit
from labeling.services.queue import queue_claim_next
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
