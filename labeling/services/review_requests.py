"""Asking for reviews: what a review is worth, and the second opinion an analyst's dispute asks for.

A *review item* (`QueueKind.REVIEW`) asks a reviewer whether a case's label is right. The pipeline
makes them for the label-issue detector's prune set; an analyst's noise flag, or an analyst's
label of another class than the given one, makes one at once, in the label's own transaction
(`second_opinion_request`). Items are ranked by the expected value of a review: how likely the
label is wrong times the impact of the error (`review_priority`: a suspected prohibited case
labelled supportable first, then restricted).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from django.db.models import Max, Q

from labeling.contracts import PickReason
from labeling.hooks import model_side
from labeling.models import (
    Annotation,
    AnnotationSource,
    Case,
    LabelClass,
    Project,
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolvedLabel,
    Tier,
)
from labeling.services.queue.draws import order_key

# Sources ranked at or above a review: a case they decided needs no second opinion.
DECIDED_SOURCES = ("review", "adjudicated")
# How likely an analyst's disagreement with the given label means the given label is wrong,
# before the detector's own score is combined in (analysts are right far more often than not).
ANALYST_SIGNAL_P = 0.7
SECOND_OPINION = "second_opinion"
# Reason details of an adjudication item that also answers a review request (an analyst's second
# opinion, the detector's doubt): the consensus step never cancels it.
KEEP_OPEN = "keep_open"

SEVERITY = {Tier.SUPPORTABLE: 0, Tier.RESTRICTED: 1, Tier.PROHIBITED: 2}
# The cost of a wrong label, by (given tier, suggested tier) severity: missing a prohibited
# merchant costs most, then a restricted one; blocking a good merchant costs less; a mix-up
# within a tier least. Multiplies the error probability, so a clear error still comes first.
UNDER_LABELLED = {(0, 2): 1.6, (1, 2): 1.4, (0, 1): 1.3}
OVER_LABELLED = 1.1


def review_impact(*, given_tier: str | None, suggested_tier: str | None) -> float:
    """How much a wrong label of `given_tier` costs when the truth is `suggested_tier`."""
    given = SEVERITY.get(Tier(given_tier), 0) if given_tier else 0
    suggested = SEVERITY.get(Tier(suggested_tier), 0) if suggested_tier else 0
    if suggested > given:
        return UNDER_LABELLED[(given, suggested)]
    return OVER_LABELLED if suggested < given else 1.0


# The detector's out-of-fold probabilities are overconfident: on generated merchants with 20%
# noise, flagged labels were wrong 25% of the time at an issue score of 0.8-0.9, 43% at 0.9-0.95,
# 68% at 0.95-0.99 and 93% above 0.99, about score ** 12. Until a calibration is learnt from
# reviewers' answers, the margin is raised to this power to read as a probability.
CERTAINTY_EXPONENT = 12


def detector_error_p(*, score: float, suggested_p: float | None) -> float:
    """How likely the detector's finding is a real error: the out-of-fold margin of the
    suggestion over the label, p(suggested) - p(label), floored at 0 and raised to
    CERTAINTY_EXPONENT (the score when the suggestion's probability is unknown).

    Used as it came, the issue score (1 - p(label)) made score x impact put doubtful cases of a
    severe class ahead of clear errors (precision of the first 250 reviews 0.76 against 0.99 in
    score order, bench/cleaning.py); calibrated, impact still orders findings of like certainty.
    """
    margin = float(score) if suggested_p is None else float(suggested_p) - (1.0 - float(score))
    return min(1.0, max(0.0, margin)) ** CERTAINTY_EXPONENT


def review_priority(*, error_p: float, given_tier: str | None, suggested_tier: str | None) -> float:
    """The expected value of reviewing a label: probability it is wrong x impact."""
    impact = review_impact(given_tier=given_tier, suggested_tier=suggested_tier)
    return round(float(error_p) * impact, 6)


def _label_names(ids: list[int]) -> dict[int, tuple[str, str]]:
    rows = LabelClass.objects.filter(pk__in=ids).only("name", "display_name", "tier")
    return {c.pk: (str(c), str(c.tier)) for c in rows}


def second_opinion_request(
    *, case: Case, annotation: Annotation, resolved: ResolvedLabel | None, now: datetime
) -> QueueItem | None:
    """A review item for a case whose given label an analyst just disputed (a noise flag, or a
    label of another class), made in the label's transaction; None when the case needs none.

    Not for cases without a given label or already decided by a reviewer. An open review item
    of the case is kept and moved up if this makes it more urgent. Expects the case's row lock.
    """
    given = case.given_label_id
    if given is None or not dispute_open(case=case, annotation=annotation, resolved=resolved):
        return None
    facts = model_side().review_facts(case_id=case.pk)
    suggested = annotation.label_id if annotation.label_id not in (None, given) else None
    if suggested is None and facts is not None and facts.suggestion_id != given:
        suggested = facts.suggestion_id
    names = _label_names([c for c in (given, suggested) if c is not None])
    found = detector_error_p(score=facts.score, suggested_p=facts.suggestion_p) if facts else 0.0
    error_p = 1.0 - (1.0 - found) * (1.0 - ANALYST_SIGNAL_P)
    priority = review_priority(
        error_p=error_p,
        given_tier=names.get(given, ("", ""))[1] or None,
        suggested_tier=names.get(suggested, ("", ""))[1] or None if suggested else None,
    )
    reason = dispute_reason(annotation=annotation, given=given, score=error_p, names=names)
    live = QueueItem.objects.filter(
        case_id=case.pk,
        kind__in=[QueueKind.REVIEW, QueueKind.ADJUDICATION],
        status__in=[QueueStatus.OPEN, QueueStatus.CLAIMED],
    ).first()
    if live is not None and live.kind == QueueKind.ADJUDICATION:
        # An adjudication decides the case and shows the adjudicator this answer; it now
        # answers a dispute too, so a later consensus step must not cancel it.
        kept = PickReason.from_json(live.reason)
        if KEEP_OPEN not in kept.details:
            details = {**kept.details, KEEP_OPEN: SECOND_OPINION}
            QueueItem.objects.filter(pk=live.pk).update(
                reason=replace(kept, details=details).to_json(), updated_at=now
            )
        return live
    if live is not None:
        # The case's review now answers an analyst too: it becomes a second opinion, which the
        # pipeline's refresh never cancels or re-ranks, and at least this urgent.
        if live.priority < priority or PickReason.from_json(live.reason).strategy != SECOND_OPINION:
            QueueItem.objects.filter(pk=live.pk).update(
                priority=max(live.priority, priority), reason=reason.to_json(), updated_at=now
            )
        return live
    return decision_item_create(
        case=case,
        kind=QueueKind.REVIEW,
        priority=priority,
        reason=reason,
        from_item_id=annotation.queue_item_id,
        suggestion=(facts.suggestion_id, facts.suggestion_p) if facts else (None, None),
        group=list(facts.group) if facts else [],
    )


def dispute_open(*, case: Case, annotation: Annotation, resolved: ResolvedLabel | None) -> bool:
    """Whether `annotation` disputes the case's given label (a noise flag, or a label of another
    class) while no reviewer or adjudicator has decided the case."""
    given = case.given_label_id
    disputes = annotation.noise_flag or (annotation.label_id not in (None, given))
    if given is None or not disputes:
        return False
    return resolved is None or resolved.source not in DECIDED_SOURCES


def dispute_reason(
    *,
    annotation: Annotation,
    given: int | None,
    score: float,
    names: dict[int, tuple[str, str]] | None = None,
) -> PickReason:
    """A second opinion's reason: what the analyst said against the given label. `names`: the
    classes' (name, tier) already read, the given label's and the analyst's among them."""
    if names is None:
        names = _label_names([c for c in (given, annotation.label_id) if c is not None])
    given_name = names.get(given, ("?", ""))[0] if given is not None else "?"
    if annotation.label_id not in (None, given):
        sentence = (
            f"An analyst labelled this {names.get(annotation.label_id, ('?', ''))[0]}; "
            f"the given label is {given_name}."
        )
    else:
        sentence = f"An analyst flagged the given label {given_name} as wrong."
    return PickReason(
        strategy=SECOND_OPINION,
        sentence=sentence,
        sentence_blind="An analyst's answer disputes the given label: a second opinion is wanted.",
        score=round(score, 4),
        details={"annotation_id": annotation.pk, "noise_flag": annotation.noise_flag},
    )


def second_opinion_withdraw(*, case: Case, annotation: Annotation, now: datetime) -> int:
    """Cancel the case's open second-opinion item once the label `annotation` is taken back (an
    undo) and no other current answer of the case disputes the given label any more.
    Expects the case's row lock; returns the items cancelled. A claimed item is the reviewer's,
    and an item made an adjudication since answers more than this label: both are left."""
    disputed = (
        Annotation.objects.filter(
            case_id=case.pk,
            source=AnnotationSource.QUEUE,
            superseded_at__isnull=True,
            skipped=False,
            content_hash=case.content_hash,
        )
        .exclude(pk=annotation.pk)
        .filter(Q(noise_flag=True) | (Q(label__isnull=False) & ~Q(label_id=case.given_label_id)))
        .exists()
    )
    if disputed:
        return 0
    # An evaluation case's dispute is an adjudication of this strategy (`adjudication.
    # evaluation_dispute_request`): it answers this label alone, so it goes too.
    return QueueItem.objects.filter(
        case_id=case.pk,
        kind__in=[QueueKind.REVIEW, QueueKind.ADJUDICATION],
        status=QueueStatus.OPEN,
        reason__strategy=SECOND_OPINION,
    ).update(status=QueueStatus.CANCELLED, updated_at=now)


def decision_item_create(
    *,
    case: Case,
    kind: str,
    priority: float,
    reason: PickReason,
    from_item_id: int | None,
    suggestion: tuple[int | None, float | None] | None = None,
    group: list[int] | None = None,
) -> QueueItem:
    """A review or adjudication item for `case`, made in a label's transaction (the case's row
    lock held): the next free slot; the similar cases of the item the answer came from
    (`from_item_id`), and its model facts unless `suggestion` (class id, probability) is given."""
    fields = ("similar_cases", "suggestion_id", "suggestion_p", "alternatives", "model_version_id")
    found = (
        QueueItem.objects.filter(pk=from_item_id).values_list(*fields).first()
        if from_item_id is not None
        else None
    )
    source_item: dict[str, Any] = dict(zip(fields, found, strict=True)) if found else {}
    facts: dict[str, object] = {
        "suggestion_id": source_item.get("suggestion_id"),
        "suggestion_p": source_item.get("suggestion_p"),
        "alternatives": source_item.get("alternatives") or [],
        "model_version_id": source_item.get("model_version_id"),
    }
    if suggestion is not None:
        facts = {"suggestion_id": suggestion[0], "suggestion_p": suggestion[1]}
    project = Project.objects.only("split_seed").get(pk=case.project_id)
    top = QueueItem.objects.filter(case_id=case.pk).aggregate(top=Max("slot"))["top"]
    slot = 0 if top is None else top + 1
    return QueueItem.objects.create(
        project_id=case.project_id,
        case_id=case.pk,
        slot=slot,
        kind=kind,
        priority=priority,
        reason=reason.to_json(),
        similar_cases=list(source_item.get("similar_cases") or []),
        group=group or [],
        random_key=order_key(split_seed=project.split_seed, case_id=case.pk, slot=slot),
        **facts,
    )
