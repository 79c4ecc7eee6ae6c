"""Adjudication: a reviewer's decision where analysts disagree (DESIGN "Resolution and authority").

An *adjudication item* (`QueueKind.ADJUDICATION`, taken by reviewers before review items) asks
for a decision of source `adjudicated`, which outranks consensus and review. Three things ask for
one: a tie between analysts' labels (in the label's own transaction: `tie_adjudication_request`,
the tie keeps the case's previous resolution meanwhile), and at each retrain's consensus step a
consensus posterior below the project's threshold or a disagreement touching the prohibited tier
(`adjudication_items_refresh`). A case gets one decision item: an open review item of the case
becomes its adjudication.

A tie on an evaluation-split case (two analysts of an evaluation draw disagree), or an analyst's
answer there that disputes the case's given label (`evaluation_dispute_request`, in place of the
pool's second-opinion review), asks for a decision without any model's facts: the item carries
no suggestion (a review it takes over loses its own), so the reviewer's decision can be the
case's evaluation label (`active_learning.selectors.evaluation_set`) without leaning towards
the model it judges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from django.db import transaction
from django.utils import timezone

from labeling.contracts import ModelFacts, PickReason
from labeling.models import (
    Annotation,
    Case,
    Project,
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolvedLabel,
    Split,
)
from labeling.services.queue import QueueEntry, queue_items_create
from labeling.services.queue.fill import DECISION_KINDS, cases_lock
from labeling.services.review_requests import (
    DECIDED_SOURCES,
    KEEP_OPEN,
    decision_item_create,
    dispute_open,
    dispute_reason,
)

TIE = "adjudication_tie"
UNCERTAIN = "adjudication_uncertain"
PROHIBITED = "adjudication_prohibited"
# Reasons the consensus step states; it cancels its own open items a later consensus no longer
# asks for. A tie's item stays until a reviewer answers it.
REFRESHED = (UNCERTAIN, PROHIBITED)
LIVE = (QueueStatus.OPEN, QueueStatus.CLAIMED)

TIE_SENTENCE = "The analysts' labels are tied: the case keeps its earlier label until you decide."
TIE_PRIORITY = 0.5  # as uncertain as a consensus posterior of 0.5


# What a tie item on an evaluation case carries instead of model facts.
NO_MODEL_FACTS: dict[str, object] = {
    "suggestion_id": None,
    "suggestion_p": None,
    "alternatives": [],
    "model_version_id": None,
}


def _take_over_review(
    item: QueueItem, reason: PickReason, priority: float, *, without_model: bool = False
) -> QueueItem:
    """An open review item of the case becomes its adjudication: one decision per case, and
    the higher-ranked kind (reviewers take adjudications first). It keeps what it answered, and
    a later consensus step never cancels it (`KEEP_OPEN`). `without_model`: it drops its model
    facts (a tie on an evaluation case)."""
    item.kind = QueueKind.ADJUDICATION
    before = PickReason.from_json(item.reason)
    reason = replace(reason, details={**reason.details, KEEP_OPEN: before.strategy})
    item.reason = reason.to_json()
    item.priority = max(item.priority, priority)
    facts = NO_MODEL_FACTS if without_model else {}
    for name, value in facts.items():
        setattr(item, name, value)
    QueueItem.objects.filter(pk=item.pk, status=QueueStatus.OPEN).update(
        kind=item.kind,
        reason=item.reason,
        priority=item.priority,
        updated_at=timezone.now(),
        **facts,
    )
    return item


def tie_adjudication_request(
    *, case: Case, annotation: Annotation, resolved: ResolvedLabel | None
) -> QueueItem | None:
    """An adjudication item for a case whose analysts' labels just tied, made in the label's
    transaction (expects the case's row lock); None when the case has one or was decided.

    On an evaluation-split case the item shows no model's facts (a review item it takes over
    drops its own): the decision then counts as the case's evaluation label."""
    if not getattr(resolved, "tied", False):
        return None
    if resolved is not None and resolved.source in DECIDED_SOURCES:
        return None
    reason = PickReason(
        strategy=TIE, sentence=TIE_SENTENCE, sentence_blind=TIE_SENTENCE, score=TIE_PRIORITY
    )
    evaluation = Case.objects.filter(pk=case.pk, split=Split.EVAL).exists()
    return _decision_wanted(case=case, annotation=annotation, reason=reason, evaluation=evaluation)


def evaluation_dispute_request(
    *, case: Case, annotation: Annotation, resolved: ResolvedLabel | None
) -> QueueItem | None:
    """An adjudication item, without any model's facts, for an evaluation-split case whose given
    label an analyst's answer just disputed, made in the label's transaction (expects the
    case's row lock); None when the case needs none (`dispute_open`) or has a decision item.

    An evaluation label is one analyst's answer; where it contradicts the given label it is
    wrong far more often than where the two agree (in the loop benchmark one analyst's
    evaluation labels were 87% right, and challengers better by 0.02 on the test split scored
    worse on them). A second opinion made beside a model's suggestion is no evaluation label,
    so the reviewer decides blind and the decision counts as the case's evaluation label
    (`active_learning.selectors.evaluation_set`). With `evaluation_overlap` above 1 the case's
    other analysts settle it instead (agreeing, or tying: `tie_adjudication_request`). Pool
    cases get a review (`second_opinion_request`)."""
    if not dispute_open(case=case, annotation=annotation, resolved=resolved):
        return None
    overlap = Project.objects.filter(pk=case.project_id).values_list(
        "evaluation_overlap", flat=True
    )
    if (overlap.first() or 1) > 1:  # its other analysts settle it, or tie and ask
        return None
    reason = dispute_reason(annotation=annotation, given=case.given_label_id, score=TIE_PRIORITY)
    return _decision_wanted(case=case, annotation=annotation, reason=reason, evaluation=True)


def _decision_wanted(
    *, case: Case, annotation: Annotation, reason: PickReason, evaluation: bool
) -> QueueItem | None:
    """The case's adjudication item for `reason`: an open review of the case becomes it, an
    existing decision item stands (on an evaluation case, an open one loses its model facts),
    else a new one, without model facts on an evaluation case."""
    live = QueueItem.objects.filter(
        case_id=case.pk, kind__in=DECISION_KINDS, status__in=LIVE
    ).first()
    if live is not None:
        # A reviewer holding the case's review decides it anyway; an adjudication stands.
        if live.kind == QueueKind.REVIEW and live.status == QueueStatus.OPEN:
            return _take_over_review(live, reason, TIE_PRIORITY, without_model=evaluation)
        if evaluation and live.status == QueueStatus.OPEN and live.suggestion_id is not None:
            # An open adjudication of an evaluation case (the consensus step's) loses its model
            # facts too: else its decision, made beside a suggestion, is no evaluation label.
            QueueItem.objects.filter(pk=live.pk, status=QueueStatus.OPEN).update(
                updated_at=timezone.now(), **NO_MODEL_FACTS
            )
        return None
    return decision_item_create(
        case=case,
        kind=QueueKind.ADJUDICATION,
        priority=TIE_PRIORITY,
        reason=reason,
        from_item_id=annotation.queue_item_id,
        suggestion=(None, None) if evaluation else None,
    )


@dataclass(frozen=True)
class AdjudicationWanted:
    """A case the consensus step sends to adjudication, with what its card states."""

    case_id: int
    why: str  # UNCERTAIN or PROHIBITED
    sentence: str
    priority: float
    suggestion_id: int | None = None
    suggestion_p: float | None = None


@transaction.atomic
def adjudication_items_refresh(
    *, project: Project, wanted: Sequence[AdjudicationWanted]
) -> dict[str, int]:
    """Make the consensus step's adjudication items: one per wanted case without a live one
    (decided cases never get one); cancel the step's open items of cases no longer wanted.
    Returns the counts created and cancelled."""
    cases_lock(project=project, case_ids=[w.case_id for w in wanted])
    decided = set(
        ResolvedLabel.objects.filter(
            case_id__in=[w.case_id for w in wanted], source__in=DECIDED_SOURCES
        ).values_list("case_id", flat=True)
    )
    keep = {w.case_id for w in wanted if w.case_id not in decided}
    stale = (
        QueueItem.objects.filter(
            project=project, kind=QueueKind.ADJUDICATION, status=QueueStatus.OPEN
        )
        .filter(reason__strategy__in=REFRESHED)
        .exclude(reason__details__has_key=KEEP_OPEN)
        .exclude(case_id__in=keep)
    )
    cancelled = stale.update(status=QueueStatus.CANCELLED, updated_at=timezone.now())
    taken_over = 0
    adjudicating = QueueItem.objects.filter(
        case_id__in=keep, kind=QueueKind.ADJUDICATION, status__in=LIVE
    ).values("case_id")
    by_case = {w.case_id: w for w in wanted}
    for item in QueueItem.objects.filter(
        case_id__in=keep, kind=QueueKind.REVIEW, status=QueueStatus.OPEN
    ).exclude(case_id__in=adjudicating):
        w = by_case[item.case_id]
        _take_over_review(item, _reason(w), w.priority)
        taken_over += 1
    entries = [
        QueueEntry(
            case_id=w.case_id,
            priority=w.priority,
            reason=_reason(w),
            kind=QueueKind.ADJUDICATION,
            facts=ModelFacts(None, w.suggestion_id, w.suggestion_p) if w.suggestion_id else None,
        )
        for w in wanted
        if w.case_id in keep
    ]
    created = queue_items_create(project=project, entries=entries)
    return {"created": len(created), "taken_over": taken_over, "cancelled": cancelled}


def _reason(w: AdjudicationWanted) -> PickReason:
    return PickReason(
        strategy=w.why, sentence=w.sentence, sentence_blind=w.sentence, score=w.priority
    )
