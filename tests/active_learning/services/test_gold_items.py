"""The pipeline keeps a small stock of gold items; their answers never reach evaluation."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from active_learning.selectors import evaluation_set
from active_learning.services.gold_items import GOLD_STOCK, gold_items_refresh, gold_stock_size
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
)
from labeling.services.annotations import annotation_submit
from labeling.services.queue import queue_claim_next
from tests.factories import AnalystFactory, CaseFactory, LabelClassFactory

pytestmark = pytest.mark.django_db


def _decide(case: Case, label, reviewer, source=ResolutionSource.REVIEW) -> None:
    Annotation.objects.create(
        case=case,
        annotator=reviewer,
        label=label,
        source=AnnotationSource.REVIEW,
        submission_id=uuid.uuid4(),
        content_hash=case.content_hash,
    )
    ResolvedLabel.objects.update_or_create(case=case, defaults={"label": label, "source": source})


def _open_gold(project) -> QueueItem:
    return QueueItem.objects.filter(project=project, kind=QueueKind.GOLD, status=QueueStatus.OPEN)


def test_the_stock_is_topped_up_from_decided_pool_cases_only(project) -> None:
    """Decided, labelled, not excluded pool cases become gold items, one each, up to the stock;
    evaluation cases, excluded and undecided ones never do."""
    label = LabelClassFactory(project=project)
    reviewer = AnalystFactory()
    decided = [CaseFactory(project=project) for _ in range(GOLD_STOCK + 3)]
    for case in decided:
        _decide(case, label, reviewer)
    evaluation = CaseFactory(project=project, split=Split.EVAL)
    _decide(evaluation, label, reviewer)
    excluded = CaseFactory(project=project)
    _decide(excluded, label, reviewer)
    ResolvedLabel.objects.filter(case=excluded).update(excluded=True)
    plain = CaseFactory(project=project)
    ResolvedLabel.objects.create(case=plain, label=label, source=ResolutionSource.ANNOTATION)
    assert gold_stock_size(project) == GOLD_STOCK
    result = gold_items_refresh(project=project, scores=None)
    assert result == {"created": GOLD_STOCK, "cancelled": 0, "open": GOLD_STOCK}
    items = list(_open_gold(project))
    assert {i.case_id for i in items} <= {c.pk for c in decided}
    assert len({i.case_id for i in items}) == GOLD_STOCK
    # Without a champion the card is a random pool card's: the random fill's reason, no facts.
    assert all(i.reason["strategy"] == "random" and i.suggestion_id is None for i in items)
    # A second refresh keeps the stock as it is.
    assert gold_items_refresh(project=project, scores=None)["created"] == 0


def test_unfit_gold_items_are_cancelled_and_gold_off_empties_the_stock(project) -> None:
    """A gold item whose case lost its decision or was excluded is cancelled and replaced;
    with gold_fraction 0 every open gold item is cancelled."""
    label = LabelClassFactory(project=project)
    reviewer = AnalystFactory()
    cases = [CaseFactory(project=project) for _ in range(GOLD_STOCK + 2)]
    for case in cases:
        _decide(case, label, reviewer)
    gold_items_refresh(project=project, scores=None)
    undone, excluded = (i.case_id for i in _open_gold(project)[:2])
    ResolvedLabel.objects.filter(case_id=undone).update(source=ResolutionSource.ANNOTATION)
    ResolvedLabel.objects.filter(case_id=excluded).update(excluded=True)
    result = gold_items_refresh(project=project, scores=None)
    assert (result["cancelled"], result["created"], result["open"]) == (2, 2, GOLD_STOCK)
    assert not _open_gold(project).filter(case_id__in=[undone, excluded]).exists()
    project.gold_fraction = 0.0
    project.save()
    assert gold_items_refresh(project=project, scores=None)["cancelled"] == GOLD_STOCK
    assert not _open_gold(project).exists()


def test_gold_answers_never_count_in_evaluation(project) -> None:
    """The evaluation set is the same before and after analysts answer gold items."""
    project.gold_fraction, project.evaluation_fraction = 1.0, 0.0
    project.save()
    ok, other = LabelClassFactory(project=project), LabelClassFactory(project=project)
    reviewer = AnalystFactory()
    for _ in range(3):
        _decide(CaseFactory(project=project), ok, reviewer)
    evaluated = CaseFactory(project=project, split=Split.EVAL)
    annotation_submit(
        item_or_case=evaluated, analyst=AnalystFactory(), submission_id=uuid.uuid4(), label=ok
    )
    before = evaluation_set(project=project)
    gold_items_refresh(project=project, scores=None)
    analyst = AnalystFactory()
    answered = 0
    while item := queue_claim_next(project=project, analyst=analyst, refill=False).current:
        assert item.kind == QueueKind.GOLD
        annotation_submit(
            item_or_case=item, analyst=analyst, submission_id=uuid.uuid4(), label=other
        )
        answered += 1
    assert answered == 3
    after = evaluation_set(project=project)
    assert np.array_equal(before.case_ids, after.case_ids)
    assert np.array_equal(before.labels, after.labels)
    assert list(after.case_ids) == [evaluated.pk]


def test_evaluation_ignores_answers_on_gold_items_even_of_a_decided_eval_case(project) -> None:
    """Guard: should a gold item ever name an eval case, its answer is no evaluation label; the
    evaluation draw's own label of the decided case still is."""
    ok, other = LabelClassFactory(project=project), LabelClassFactory(project=project)
    case = CaseFactory(project=project, split=Split.EVAL)
    for kind, label in (("evaluation", ok), ("gold", other), ("gold", other)):
        item = QueueItem.objects.create(
            project=project, case=case, kind=kind, slot=QueueItem.objects.filter(case=case).count()
        )
        Annotation.objects.create(
            case=case,
            annotator=AnalystFactory(),
            label=label,
            queue_item=item,
            submission_id=uuid.uuid4(),
            content_hash=case.content_hash,
        )
    _decide(case, other, AnalystFactory())
    labels = evaluation_set(project=project)
    assert list(labels.case_ids) == [case.pk] and list(labels.labels) == [ok.pk]
