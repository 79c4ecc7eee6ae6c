"""The stock of gold items: decided cases served back, unmarked, to measure analysts' accuracy.

A gold item (`QueueKind.GOLD`) is a pool-split case a reviewer or adjudicator decided, queued
again as one item; the claim serves one at the project's `gold_fraction` of claims
(`labeling.services.queue.claim`), never to whoever answered the case, and the answers are
measured by `labeling.selectors.gold_results`. The pipeline's refresh step keeps the stock.
"""

from __future__ import annotations

import math

from django.utils import timezone

from active_learning.services.queue_refresh import card_facts, items_refresh_facts, target_size
from active_learning.services.scoring import Scores
from labeling.models import Project, QueueItem, QueueKind, QueueStatus, ResolvedLabel, Split
from labeling.selectors import GOLD_SOURCES, gold_case_ids
from labeling.services.queue import QueueEntry, queue_items_create
from labeling.services.queue.fill import RANDOM

GOLD_STOCK = 10  # open gold items kept at least (while gold_fraction > 0)


def gold_stock_size(project: Project) -> int:
    """How many open gold items to keep: enough for gold_fraction of the claims of about the
    open pool (TARGET_FACTOR batches), at least GOLD_STOCK; none when gold is off."""
    if project.gold_fraction <= 0:
        return 0
    return max(GOLD_STOCK, math.ceil(project.gold_fraction * target_size(project)))


def _gold_qualified(*, project: Project, case_ids: list[int]) -> set[int]:
    """Those of `case_ids` still fit to be gold: decided pool cases with a label, not excluded."""
    return set(
        ResolvedLabel.objects.filter(
            case__project=project,
            case__split=Split.POOL,
            case_id__in=case_ids,
            source__in=GOLD_SOURCES,
            excluded=False,
            label__isnull=False,
        ).values_list("case_id", flat=True)
    )


def gold_items_refresh(*, project: Project, scores: Scores | None) -> dict[str, int]:
    """Keep a small stock of open gold items: decided cases served back, unmarked, to measure
    each analyst's accuracy (the claim serves them at `gold_fraction`, `labeling.services.queue`).

    Open gold items whose case is no longer fit (its decision undone or an exclusion; all of
    them when gold is off) are cancelled; the others get the champion's current facts, as
    evaluation items do; the stock is topped up from `gold_case_ids` (fewest gold answers
    first). Each new item carries the same kind of reason, similar cases and model facts as a
    pool card (without a champion: the random fill's reason and no facts, as random pool items
    have), so nothing on the page tells it apart. Claimed items are left alone.
    """
    items = list(
        QueueItem.objects.filter(project=project, status=QueueStatus.OPEN, kind=QueueKind.GOLD)
    )
    want = gold_stock_size(project)
    fit = _gold_qualified(project=project, case_ids=[i.case_id for i in items]) if want else set()
    unfit = [i.pk for i in items if i.case_id not in fit]
    if unfit:
        # Only those still open: one claimed meanwhile is left to its analyst.
        QueueItem.objects.filter(pk__in=unfit, status=QueueStatus.OPEN).update(
            status=QueueStatus.CANCELLED, updated_at=timezone.now()
        )
    kept = [i for i in items if i.case_id in fit]
    if scores is not None and kept:
        items_refresh_facts(project=project, scores=scores, items=kept)
    ids = gold_case_ids(project=project, limit=want - len(kept))
    facts = card_facts(project=project, scores=scores, case_ids=ids) if scores and ids else {}
    version = scores.version.pk if scores is not None else None
    entries = []
    for case_id in ids:
        if case_id in facts:
            reason, similar, card = facts[case_id]
            entries.append(QueueEntry(case_id, 0.0, reason, version, similar, card, QueueKind.GOLD))
        else:
            entries.append(QueueEntry(case_id, 0.0, RANDOM, version, [], None, QueueKind.GOLD))
    created = queue_items_create(project=project, entries=entries) if entries else []
    return {"created": len(created), "cancelled": len(unfit), "open": len(kept) + len(created)}
