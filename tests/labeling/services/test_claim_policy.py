"""Each role claims only the kinds of item its policy gives it, in the policy's order."""

from __future__ import annotations

import pytest

from labeling.models import Case, QueueItem, QueueKind, QueueStatus
from labeling.services.queue import queue_claim_next
from labeling.services.queue.policy import DRAW, claim_order, policy_problems
from tests.factories import AnalystFactory, CaseFactory, QueueItemFactory

pytestmark = pytest.mark.django_db

KINDS = [QueueKind.POOL, QueueKind.EVALUATION, QueueKind.REVIEW, QueueKind.ADJUDICATION]


def _one_of_each(project, per_kind: int = 2) -> None:
    for kind in KINDS:
        for i in range(per_kind):
            split = "eval" if kind == QueueKind.EVALUATION else "pool"
            QueueItemFactory(case=CaseFactory(project=project, split=split), kind=kind, priority=i)


def _claim_all(project, user, role: str) -> list[str]:
    """Claim and finish items until none is left for `user`; the kinds in claim order."""
    kinds = []
    while True:
        result = queue_claim_next(project=project, analyst=user, role=role, refill=False)
        if result.current is None:
            return kinds
        kinds.append(result.current.kind)
        QueueItem.objects.filter(pk=result.current.pk).update(status=QueueStatus.DONE)


def test_analysts_never_get_review_or_adjudication_items(project) -> None:
    """Analysts take pool and evaluation items only, however many review items wait."""
    _one_of_each(project)
    kinds = _claim_all(project, AnalystFactory(), "analyst")
    assert sorted(kinds) == sorted([QueueKind.POOL] * 2 + [QueueKind.EVALUATION] * 2)


@pytest.mark.parametrize("fraction, first", [(1.0, QueueKind.EVALUATION), (0.0, QueueKind.POOL)])
def test_analysts_get_evaluation_items_by_the_seeded_draw(project, fraction, first) -> None:
    """The draw decides evaluation or pool per claim; the other kind when one runs out."""
    project.evaluation_fraction = fraction
    project.save()
    _one_of_each(project)
    kinds = _claim_all(project, AnalystFactory(), "analyst")
    assert kinds[:2] == [first, first]
    assert set(kinds) == {QueueKind.POOL, QueueKind.EVALUATION}


def test_reviewers_take_adjudication_then_review_then_pool(project) -> None:
    """Reviewers work the disputes first; evaluation items stay for analysts' draws."""
    _one_of_each(project)
    kinds = _claim_all(project, AnalystFactory(), "reviewer")
    expected = [QueueKind.ADJUDICATION] * 2 + [QueueKind.REVIEW] * 2 + [QueueKind.POOL] * 2
    assert kinds == expected


def test_items_of_one_kind_go_by_priority(project) -> None:
    for priority in (0.2, 0.9, 0.5):
        QueueItemFactory(
            case=CaseFactory(project=project), kind=QueueKind.REVIEW, priority=priority
        )
    reviewer = AnalystFactory()
    served = []
    while item := queue_claim_next(project=project, analyst=reviewer, role="reviewer").current:
        served.append(item.priority)
        QueueItem.objects.filter(pk=item.pk).update(status=QueueStatus.DONE)
    assert served == [0.9, 0.5, 0.2]


def test_a_project_policy_reorders_a_role_within_what_it_may_take(project) -> None:
    project.claim_policy = {"reviewer": ["review", "adjudication"], "analyst": ["review"]}
    project.save()
    assert claim_order(project=project, role="reviewer") == ("review", "adjudication")
    # Analysts may never take review items: the project's entry is ignored, the default holds.
    assert claim_order(project=project, role="analyst") == (DRAW,)
    _one_of_each(project)
    kinds = _claim_all(project, AnalystFactory(), "reviewer")
    assert kinds == [QueueKind.REVIEW] * 2 + [QueueKind.ADJUDICATION] * 2
    assert policy_problems(project.claim_policy) == [
        "Claim policy for analyst: 'review' is not a queue kind that role may take."
    ]


def test_a_policy_that_would_hand_analysts_review_items_is_refused(project) -> None:
    from django.core.exceptions import ValidationError

    project.claim_policy = {"analyst": ["adjudication"]}
    with pytest.raises(ValidationError, match="not a queue kind that role may take"):
        project.full_clean()


def test_one_analyst_never_holds_two_items_of_a_case_across_kinds(project) -> None:
    """A case with a pool item and a review item: a reviewer holding one is not given the other."""
    case = CaseFactory(project=project)
    QueueItemFactory(case=case, kind=QueueKind.REVIEW, priority=1)
    QueueItemFactory(case=case, kind=QueueKind.POOL, slot=1, priority=1)
    reviewer = AnalystFactory()
    result = queue_claim_next(project=project, analyst=reviewer, role="reviewer")
    assert result.current.kind == QueueKind.REVIEW and result.next is None
    assert Case.objects.count() == 1
