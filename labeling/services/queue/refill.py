"""Topping up a queue running low, and how many open pool items to keep (the *buffer*).

A retrain refreshes the queue from fresh scores, but it takes minutes and may wait for a busy
worker; meanwhile the queue is topped up from the champion's stored scores (the model side's
`queue_refill` hook), and at random only when there is no champion or it has no stored scores.
The buffer is sized so that the analysts' measured pace (answers per second over the last
PACE_WINDOW) lasts the last retrain's duration, times SAFETY; never below the usual target
(FILL_FACTOR batches) nor above BUFFER_CAP_FACTOR batches.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from labeling.hooks import model_side
from labeling.models import Project, QueueItem, QueueKind, QueueStatus
from labeling.selectors import queue_pace, retrain_seconds_last
from labeling.services.queue.fill import FILL_FACTOR, LABELLING_KINDS, LOW_FACTOR, queue_fill_random

PACE_WINDOW = timedelta(minutes=15)
SAFETY = 2.0  # retrains vary in length and the pace in bursts: keep twice the expected need
BUFFER_CAP_FACTOR = 20  # at most this many batches open: picks from old scores go stale


def buffer_size(
    *,
    target: int,
    labels_per_second: float,
    retrain_seconds: float | None,
    cap: int,
    safety: float = SAFETY,
) -> int:
    """Open pool items to keep: `target`, or more when the pace x the retrain's duration x
    `safety` needs more, at most `cap` (never below `target`)."""
    need = math.ceil(max(labels_per_second, 0.0) * max(retrain_seconds or 0.0, 0.0) * safety)
    return max(target, min(need, cap))


def queue_buffer(*, project: Project, now: datetime | None = None) -> int:
    """The project's buffer (see `buffer_size`) from its measured pace and last retrain."""
    now = now or timezone.now()
    return buffer_size(
        target=FILL_FACTOR * project.batch_size,
        labels_per_second=queue_pace(project=project, since=now - PACE_WINDOW, now=now),
        retrain_seconds=retrain_seconds_last(project=project),
        cap=BUFFER_CAP_FACTOR * project.batch_size,
    )


def queue_top_up(*, project_id: int) -> int:
    """Top up a queue running low to the buffer; returns the items created.

    With a champion, a retrain is asked for (it ends by refreshing the queue from fresh scores)
    and, meanwhile, the champion's stored scores give the picks at once. Random cases fill it
    when there is no champion or no stored score, or when the model side found nothing while
    nothing at all is left, so nobody waits. Runs after commit (never inside a claim); the
    project's row lock makes a second top-up racing this one find the queue full.
    """
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    side = model_side()
    if side.champion(project=project) is not None:
        side.retrain_start(project=project, reason="the queue is running low", automatic=True)
    keep = queue_buffer(project=project)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).values_list("pk").first()
        open_items = QueueItem.objects.filter(project=project, status=QueueStatus.OPEN)
        n_pool = open_items.filter(kind=QueueKind.POOL).values("pk")[:keep].count()
        if n_pool >= LOW_FACTOR * project.batch_size:
            return 0
        created = side.queue_refill(project=project, count=keep - n_pool)
        if created is None or (
            created == 0 and not open_items.filter(kind__in=LABELLING_KINDS).exists()
        ):
            created = queue_fill_random(project=project, cases=keep - n_pool)
        return created
