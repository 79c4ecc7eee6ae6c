"""Review decisions: authority order, verdicts, group decisions and their undo, second opinions."""

from __future__ import annotations

import uuid

import pytest

from labeling.models import (
    Annotation,
    AnnotationSource,
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolutionSource,
    ResolvedLabel,
    Split,
    Tier,
)
from labeling.services.annotations import (
    Verdict,
    annotation_submit,
    annotation_undo,
    review_submit,
)
from labeling.services.annotations.review import ERR_NEED_REASON
from labeling.services.queue import queue_claim_next
from labeling.services.review_requests import review_impact, review_priority
from tests.factories import AnalystFactory, CaseFactory, LabelClassFactory, QueueItemFactory
from workbench.errors import ApplicationError

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


def _queue_label(case, label, **flags):
    return annotation_submit(
        item_or_case=case,
        analyst=AnalystFactory(),
        submission_id=uuid.uuid4(),
        label=label,
        **flags,
    )


def _review_item(case, kind=QueueKind.REVIEW, group=(), suggestion=None):
    return QueueItemFactory(case=case, kind=kind, slot=90, group=list(group), suggestion=suggestion)


def _decide(item, verdict, reviewer=None, **kwargs):
    return review_submit(
        item=item,
        reviewer=reviewer or AnalystFactory(),
        submission_id=kwargs.pop("submission_id", uuid.uuid4()),
        verdict=verdict,
        **kwargs,
    )


def _resolved(case) -> ResolvedLabel:
    return ResolvedLabel.objects.get(case=case)


def test_a_reviewer_beats_two_agreeing_analysts(case, classes) -> None:
    """Two analysts say class 1; the reviewer keeps the given label: the reviewer's word holds."""
    _queue_label(case, classes[1])
    _queue_label(case, classes[1])
    assert _resolved(case).label == classes[1]
    _decide(_review_item(case), Verdict.CONFIRM)
    resolved = _resolved(case)
    assert (resolved.label, resolved.source) == (classes[0], ResolutionSource.REVIEW)
    assert resolved.agreement == 0.0 and not resolved.doubtful


def test_a_later_analyst_vote_does_not_undo_a_review(case, classes) -> None:
    _decide(_review_item(case), Verdict.RELABEL, label=classes[2])
    for _ in range(3):
        _queue_label(case, classes[1])
    resolved = _resolved(case)
    assert (resolved.label, resolved.source) == (classes[2], ResolutionSource.REVIEW)


def test_an_adjudication_beats_a_review_and_a_later_review_does_not_undo_it(case, classes) -> None:
    _decide(_review_item(case), Verdict.RELABEL, label=classes[2])
    adjudication = QueueItemFactory(case=case, kind=QueueKind.ADJUDICATION, slot=91)
    _decide(adjudication, Verdict.RELABEL, label=classes[1])
    assert (_resolved(case).label, _resolved(case).source) == (
        classes[1],
        ResolutionSource.ADJUDICATED,
    )
    later = QueueItemFactory(case=case, kind=QueueKind.REVIEW, slot=92)
    _decide(later, Verdict.CONFIRM)
    assert _resolved(case).source == ResolutionSource.ADJUDICATED
    assert _resolved(case).label == classes[1]


def test_a_later_decision_of_the_same_rank_supersedes_with_history(case, classes) -> None:
    """A second reviewer's decision replaces the first; both stay in the history."""
    first = _decide(_review_item(case), Verdict.RELABEL, label=classes[2]).annotation
    second_item = QueueItemFactory(case=case, kind=QueueKind.REVIEW, slot=93)
    second = _decide(second_item, Verdict.CONFIRM).annotation
    assert _resolved(case).label == classes[0]
    assert Annotation.objects.filter(pk__in=[first.pk, second.pk]).count() == 2
    assert case.project.audit_events.filter(action="resolution.change").count() >= 2


def test_accept_takes_the_suggestion_and_exclude_needs_a_reason(case, classes) -> None:
    item = _review_item(case, suggestion=classes[1])
    with pytest.raises(ApplicationError) as raised:
        _decide(item, Verdict.EXCLUDE, exclude_reason="  ")
    assert raised.value.message == ERR_NEED_REASON
    assert not Annotation.objects.filter(case=case).exists()  # nothing half-written
    item.refresh_from_db()
    assert item.status == QueueStatus.OPEN
    _decide(item, Verdict.ACCEPT)
    assert _resolved(case).label == classes[1]


def test_an_exclusion_takes_the_case_out_of_the_dataset(case, classes) -> None:
    decision = _decide(_review_item(case), Verdict.EXCLUDE, exclude_reason="not a merchant")
    resolved = _resolved(case)
    assert resolved.excluded and resolved.label is None
    assert resolved.source == ResolutionSource.REVIEW
    assert decision.annotation.exclude_reason == "not a merchant"


def test_a_replayed_decision_changes_nothing(case, classes) -> None:
    reviewer, sid, item = AnalystFactory(), uuid.uuid4(), _review_item(case)
    first = _decide(item, Verdict.CONFIRM, reviewer=reviewer, submission_id=sid)
    again = _decide(item, Verdict.CONFIRM, reviewer=reviewer, submission_id=sid)
    assert again.annotation.pk == first.annotation.pk
    assert Annotation.objects.filter(case=case).count() == 1


def test_a_decision_on_a_queue_item_is_refused(case, classes) -> None:
    pool = QueueItemFactory(case=case, kind=QueueKind.POOL)
    with pytest.raises(ApplicationError):
        _decide(pool, Verdict.CONFIRM)


def test_a_group_decision_resolves_every_member_and_undo_reverts_all(project, classes) -> None:
    """One action fixes a rule's systematic mistake; one undo takes it all back."""
    cases = [CaseFactory(project=project, given_label=classes[0]) for _ in range(4)]
    other = CaseFactory(project=project, given_label=classes[2])  # another given label: skipped
    head, members = cases[0], cases[1:]
    member_items = [_review_item(m) for m in members]
    item = _review_item(head, group=[m.pk for m in members] + [other.pk])
    reviewer = AnalystFactory()
    queue_claim_next(project=project, analyst=reviewer, role="reviewer")
    decision = _decide(item, Verdict.RELABEL, reviewer=reviewer, label=classes[1], apply_group=True)
    assert sorted(decision.members) == sorted(m.pk for m in members)
    for member in members:
        resolved = _resolved(member)
        assert (resolved.label, resolved.source) == (classes[1], ResolutionSource.REVIEW)
        copy = Annotation.objects.get(case=member, superseded_at__isnull=True)
        assert copy.group_decision_id == decision.annotation.pk
    assert not ResolvedLabel.objects.filter(case=other).exists()
    assert all(QueueItem.objects.get(pk=i.pk).status == QueueStatus.CANCELLED for i in member_items)
    annotation_undo(project=project, analyst=reviewer)
    for member in [head, *members]:
        assert _resolved(member).source != ResolutionSource.REVIEW
        assert _resolved(member).label == classes[0]
    assert all(QueueItem.objects.get(pk=i.pk).status == QueueStatus.OPEN for i in member_items)
    assert QueueItem.objects.get(pk=item.pk).assigned_to == reviewer  # back in front of them


def test_a_noise_flag_asks_for_a_second_opinion_at_once(case, classes) -> None:
    _queue_label(case, None, noise_flag=True)
    review = QueueItem.objects.get(case=case, kind=QueueKind.REVIEW)
    assert review.status == QueueStatus.OPEN and review.reason["strategy"] == "second_opinion"
    assert "flagged" in review.reason["sentence"]


def test_a_disagreeing_label_asks_for_one_review_and_moves_it_up(case, classes) -> None:
    _queue_label(case, classes[2])
    first = QueueItem.objects.get(case=case, kind=QueueKind.REVIEW)
    _queue_label(case, classes[2])
    _queue_label(case, classes[1])  # prohibited: more urgent, same item
    review = QueueItem.objects.get(case=case, kind=QueueKind.REVIEW)
    assert review.pk == first.pk and review.priority > first.priority
    # Analysts now tie: the same item becomes the case's adjudication, at least as urgent.
    _queue_label(case, classes[1])
    (item,) = QueueItem.objects.filter(
        case=case, kind__in=[QueueKind.REVIEW, QueueKind.ADJUDICATION]
    )
    assert (item.pk, item.kind) == (first.pk, QueueKind.ADJUDICATION)
    assert item.priority >= review.priority


def test_agreeing_labels_and_decided_cases_ask_for_nothing(case, classes) -> None:
    _queue_label(case, classes[0])
    assert not QueueItem.objects.filter(case=case, kind=QueueKind.REVIEW).exists()
    _decide(_review_item(case), Verdict.CONFIRM)
    _queue_label(case, classes[1], noise_flag=True)
    assert QueueItem.objects.filter(case=case, kind=QueueKind.REVIEW).count() == 1


def test_analysts_never_claim_review_items_and_reviewers_take_them_first(project, classes) -> None:
    pool = CaseFactory(project=project, given_label=classes[0])
    QueueItemFactory(case=pool, kind=QueueKind.POOL, priority=100.0)
    flagged = CaseFactory(project=project, given_label=classes[0])
    review = _review_item(flagged)
    analyst = AnalystFactory()
    claim = queue_claim_next(project=project, analyst=analyst, refill=False)
    assert claim.current.case_id == pool.pk and claim.next is None
    reviewer_claim = queue_claim_next(project=project, analyst=AnalystFactory(), role="reviewer")
    assert reviewer_claim.current.pk == review.pk


def test_a_review_of_an_evaluation_case_is_not_an_evaluation_label(project, classes) -> None:
    """Evaluation labels come only from evaluation draws."""
    from active_learning.selectors import evaluation_set, training_set

    case = CaseFactory(project=project, given_label=classes[0], split=Split.EVAL)
    _decide(_review_item(case), Verdict.RELABEL, label=classes[1])
    assert case.pk not in evaluation_set(project=project).case_ids.tolist()
    assert case.pk not in training_set(project=project).case_ids.tolist()


def test_excluded_cases_are_absent_from_training_and_evaluation(project, classes) -> None:
    from active_learning.selectors import detection_set, evaluation_set, training_set

    pool = CaseFactory(project=project, given_label=classes[0])
    evaluation = CaseFactory(project=project, given_label=classes[0], split=Split.EVAL)
    eval_item = QueueItemFactory(case=evaluation, kind=QueueKind.EVALUATION)
    annotation_submit(
        item_or_case=eval_item,
        analyst=AnalystFactory(),
        submission_id=uuid.uuid4(),
        label=classes[0],
    )
    assert evaluation.pk in evaluation_set(project=project).case_ids.tolist()
    for case in (pool, evaluation):
        _decide(_review_item(case), Verdict.EXCLUDE, exclude_reason="duplicate")
    for labels in (training_set, detection_set, evaluation_set):
        ids = labels(project=project).case_ids.tolist()
        assert pool.pk not in ids and evaluation.pk not in ids


def test_review_priority_puts_missed_prohibited_cases_first() -> None:
    supportable, restricted, prohibited = Tier.SUPPORTABLE, Tier.RESTRICTED, Tier.PROHIBITED
    missed_prohibited = review_impact(given_tier=supportable, suggested_tier=prohibited)
    missed_restricted = review_impact(given_tier=supportable, suggested_tier=restricted)
    same_tier = review_impact(given_tier=supportable, suggested_tier=supportable)
    assert missed_prohibited > missed_restricted > same_tier == 1.0
    assert review_priority(error_p=0.9, given_tier=supportable, suggested_tier=prohibited) > (
        review_priority(error_p=0.9, given_tier=supportable, suggested_tier=restricted)
    )


def test_the_reviewer_label_source_is_recorded(case, classes) -> None:
    decision = _decide(_review_item(case), Verdict.CONFIRM)
    assert decision.annotation.source == AnnotationSource.REVIEW
    assert decision.annotation.shown["verdict"] == "confirm"


def test_a_demoted_reviewer_gives_their_held_review_items_back(project, classes) -> None:
    """Claimed as a reviewer, then claiming as an analyst: the review item returns to the queue
    instead of coming back on a card the analyst may not answer."""
    review = _review_item(CaseFactory(project=project, given_label=classes[0]))
    pool = QueueItemFactory(case=CaseFactory(project=project), kind=QueueKind.POOL)
    person = AnalystFactory()
    assert queue_claim_next(project=project, analyst=person, role="reviewer").current == review
    claim = queue_claim_next(project=project, analyst=person, refill=False)
    assert claim.current.pk == pool.pk
    review.refresh_from_db()
    assert review.status == QueueStatus.OPEN and review.assigned_to is None


def test_a_group_decision_never_overrides_a_member_reviewed_on_its_own(project, classes) -> None:
    head, member = (CaseFactory(project=project, given_label=classes[0]) for _ in range(2))
    _decide(_review_item(member), Verdict.CONFIRM)
    decision = _decide(
        _review_item(head, group=[member.pk]), Verdict.RELABEL, label=classes[1], apply_group=True
    )
    assert decision.members == ()
    assert _resolved(member).label == classes[0]


def test_the_detectors_error_probability_is_the_margin_over_the_label() -> None:
    """A label the model is merely unsure of ranks below a clear error of a milder class."""
    from labeling.services.review_requests import detector_error_p

    unsure = detector_error_p(score=0.85, suggested_p=0.80)  # p(label) 0.15: margin 0.65
    clear = detector_error_p(score=0.99, suggested_p=0.98)  # margin 0.97
    assert unsure == pytest.approx(0.65**12) and clear == pytest.approx(0.97**12)
    assert review_priority(
        error_p=unsure, given_tier=Tier.SUPPORTABLE, suggested_tier=Tier.PROHIBITED
    ) < review_priority(error_p=clear, given_tier=Tier.SUPPORTABLE, suggested_tier=Tier.SUPPORTABLE)
    assert detector_error_p(score=0.2, suggested_p=0.1) == 0.0


def test_undoing_a_group_decision_gives_back_the_reviewers_own_earlier_label(
    project, classes
) -> None:
    head, member = (CaseFactory(project=project, given_label=classes[0]) for _ in range(2))
    reviewer = AnalystFactory()
    own = annotation_submit(
        item_or_case=member, analyst=reviewer, submission_id=uuid.uuid4(), label=classes[2]
    )
    _decide(
        _review_item(head, group=[member.pk]),
        Verdict.RELABEL,
        reviewer=reviewer,
        label=classes[1],
        apply_group=True,
    )
    assert _resolved(member).label == classes[1]
    annotation_undo(project=project, analyst=reviewer)
    own.refresh_from_db()
    assert own.superseded_at is None
    assert (_resolved(member).label, _resolved(member).source) == (classes[2], "annotation")


def test_undoing_a_dispute_withdraws_its_second_opinion_unless_another_stands(
    project, case, classes
) -> None:
    """An analyst's disputing label asks for a review; their undo withdraws it. With a second
    analyst disputing too, the undo of one leaves the review open."""
    first, second = AnalystFactory(), AnalystFactory()
    for analyst in (first, second):
        annotation_submit(
            item_or_case=case, analyst=analyst, submission_id=uuid.uuid4(), label=classes[1]
        )
    review = QueueItem.objects.get(case=case, kind=QueueKind.REVIEW)
    annotation_undo(project=project, analyst=first)
    assert QueueItem.objects.get(pk=review.pk).status == QueueStatus.OPEN  # `second` disputes
    annotation_undo(project=project, analyst=second)
    assert QueueItem.objects.get(pk=review.pk).status == QueueStatus.CANCELLED
    third = AnalystFactory()
    flagged = CaseFactory(project=project, given_label=classes[0])
    annotation_submit(
        item_or_case=flagged, analyst=third, submission_id=uuid.uuid4(), label=None, noise_flag=True
    )
    item = QueueItem.objects.get(case=flagged, kind=QueueKind.REVIEW)
    annotation_undo(project=project, analyst=third)
    assert QueueItem.objects.get(pk=item.pk).status == QueueStatus.CANCELLED
