"""Claiming the next item atomically, renewing and releasing leases.

A claim is one statement, `UPDATE ... WHERE id = (SELECT ... LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id` on PostgreSQL (SQLite runs the same statement without the lock clause, serialized by
its IMMEDIATE transactions). Times are aware datetimes; leases last QUEUE_LEASE_SECONDS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from labeling.models import Annotation, Case, Project, QueueCursor, QueueItem, QueueStatus
from labeling.services.queue.draws import draw_is_evaluation
from workbench.core import sql

ITEMS_SHOWN = 2  # the current item and the pre-claimed next one
CLAIM_ATTEMPTS = 3  # tries when the (case, analyst) constraint rejects a racing claim

_QI = QueueItem._meta.db_table
_ANN = Annotation._meta.db_table
_CUR = QueueCursor._meta.db_table

# Open items of one kind, best first, that this analyst may take: none of a case they hold, did
# or skipped (the unique (case, assigned_to) constraint is the backstop for the first two).
_CLAIM_SQL = f"""
UPDATE {_QI} SET status = 'claimed', assigned_to_id = %(analyst)s, lease_expires_at = %(lease)s,
       claimed_at = %(now)s, front_at = NULL, updated_at = %(now)s
WHERE id = (
    SELECT q.id FROM {_QI} q
    WHERE q.project_id = %(project)s AND q.status = 'open' AND q.is_evaluation = {{kind}}
      AND NOT EXISTS (
          SELECT 1 FROM {_QI} m WHERE m.case_id = q.case_id AND m.assigned_to_id = %(analyst)s
          AND m.status IN ('claimed', 'done'))
      AND NOT EXISTS (
          SELECT 1 FROM {_ANN} s WHERE s.case_id = q.case_id AND s.annotator_id = %(analyst)s
          AND s.skipped AND s.superseded_at IS NULL)
    ORDER BY {{order}}
    LIMIT 1 {{lock}}
) AND status = 'open'
RETURNING id, {{low_check}}
"""
# Fewer open items than twice a batch: refill. Checked every LOW_CHECK_EVERY-th claim number of
# an analyst (the scan costs as much as the claim): with several analysts at work, a few claims.
_LOW_SQL = f"""NOT EXISTS (
    SELECT 1 FROM {_QI} o WHERE o.project_id = %(project)s AND o.status = 'open'
    LIMIT 1 OFFSET %(low)s)"""
LOW_CHECK_EVERY = 8
_ORDER = {True: "q.random_key, q.id", False: "q.priority DESC, q.id"}

_RELEASE_SQL = f"""
UPDATE {_QI} SET status = 'open', assigned_to_id = NULL, lease_expires_at = NULL,
       claimed_at = NULL, front_at = NULL, updated_at = %(now)s
WHERE id IN (
    SELECT id FROM {_QI} WHERE status = 'claimed' AND lease_expires_at < %(now)s {{project}}
    {{lock}}
)
"""

# The analyst's held items, and which have less than half their lease left. Read, not updated:
# renewing every lease at every claim rewrote two rows (and all their index entries) per answer.
_HELD_SQL = f"""
SELECT id, lease_expires_at < %(renew)s FROM {_QI}
WHERE project_id = %(project)s AND assigned_to_id = %(analyst)s AND status = 'claimed'
"""
_RENEW_SQL = f"""
UPDATE {_QI} SET lease_expires_at = %(lease)s, updated_at = %(now)s
WHERE id IN ({{ids}}) AND assigned_to_id = %(analyst)s AND status = 'claimed'
RETURNING id
"""

# Locks the analyst's cursor row for the transaction, so one analyst's claims run one at a time,
# and reserves the claim numbers of the draws this claim may make (unused ones are skipped: each
# draw is an independent seeded coin, so skipping numbers biases nothing).
_CURSOR_SQL = f"""
INSERT INTO {_CUR} (project_id, analyst_id, claims)
VALUES (%(project)s, %(analyst)s, {ITEMS_SHOWN})
ON CONFLICT (project_id, analyst_id) DO UPDATE SET claims = {_CUR}.claims + {ITEMS_SHOWN}
RETURNING claims - {ITEMS_SHOWN} {{relaxed}}
"""
# A claim is a lease, not data: if a crash loses it the item is simply open again, so its commit
# need not wait for the WAL flush (about 1 ms here). Only in its own transaction, never a label's.
_RELAXED_COMMIT = ", set_config('synchronous_commit', 'off', true)"


@dataclass(frozen=True)
class ClaimResult:
    """What the queue page shows: the current item and the next one, both held by the analyst."""

    current: QueueItem | None
    next: QueueItem | None


def lease_seconds() -> int:
    return int(getattr(settings, "QUEUE_LEASE_SECONDS", 600))


def _lock_clause() -> str:
    return "FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""


def _claim_one(*, evaluation: bool, params: dict, check_low: bool) -> tuple[int, bool] | None:
    """The claimed item's id and whether the open queue is now running low (if `check_low`);
    None when nothing is left to claim."""
    statement = _CLAIM_SQL.format(
        kind="TRUE" if evaluation else "FALSE",
        order=_ORDER[evaluation],
        lock=_lock_clause(),
        low_check=_LOW_SQL if check_low else "FALSE",
    )
    row = sql.fetch_one(statement, params)
    return (int(row[0]), bool(row[1])) if row else None


def _held_order(item: QueueItem) -> tuple:
    # Items an undo returned come first (latest undo first), then by claim time.
    front = -item.front_at.timestamp() if item.front_at else float("inf")
    claimed = item.claimed_at.timestamp() if item.claimed_at else 0.0
    return (front, claimed, item.pk)


def queue_claim_next(
    *, project: Project, analyst: Any, now: datetime | None = None, refill: bool = True
) -> ClaimResult:
    """The analyst's current and next items, claiming what is missing; reloads leak nothing.

    Items the analyst already holds come back first (their leases renewed). Expired claims of
    other analysts return to the queue at the minute tick (`queue_release_expired`), or at once
    when a claim finds nothing open. Each new claim draws evaluation
    or pool from a seed of (project, analyst, claim count) at the project's evaluation fraction,
    taking the other kind when one is exhausted. With `refill`, a queue running low is topped up
    with random cases after commit (until the pipeline chooses cases).
    """
    now = now or timezone.now()
    for attempt in range(CLAIM_ATTEMPTS):
        try:
            ordered = _claim(project=project, analyst=analyst, now=now, refill=refill)
            break
        except IntegrityError:
            # The (case, assigned_to) constraint caught a race with this analyst's own concurrent
            # write (a late submit or undo on the chosen case): the next attempt skips that case.
            if attempt == CLAIM_ATTEMPTS - 1 or transaction.get_connection().in_atomic_block:
                raise
    if not ordered and refill and _refill(project_id=project.pk):
        return queue_claim_next(project=project, analyst=analyst, now=now, refill=False)
    shown: list[QueueItem | None] = [*ordered, None, None]
    return ClaimResult(current=shown[0], next=shown[1])


def _claim(*, project: Project, analyst: Any, now: datetime, refill: bool) -> list[QueueItem]:
    params: dict[str, Any] = {
        "project": project.pk,
        "analyst": analyst.pk,
        "now": sql.db_time(now),
        "lease": sql.db_time(now + timedelta(seconds=lease_seconds())),
        "renew": sql.db_time(now + timedelta(seconds=lease_seconds() / 2)),
        "low": max(2 * project.batch_size - 1, 0),  # under twice a batch open: refill
    }
    relaxed = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        cursor_row = sql.fetch_one(
            _CURSOR_SQL.format(relaxed=_RELAXED_COMMIT if relaxed else ""), params
        )
        assert cursor_row is not None
        claims = int(cursor_row[0])
        held_ids = _held(params)
        new_ids: list[int] = []
        low = released = False
        while len(held_ids) + len(new_ids) < ITEMS_SHOWN:
            number = claims + len(new_ids)
            evaluation = draw_is_evaluation(
                split_seed=project.split_seed,
                analyst_id=analyst.pk,
                claim_number=number,
                evaluation_fraction=project.evaluation_fraction,
            )
            check_low = refill and number % LOW_CHECK_EVERY == 0
            claimed = _claim_one(evaluation=evaluation, params=params, check_low=check_low)
            if claimed is None:
                claimed = _claim_one(evaluation=not evaluation, params=params, check_low=check_low)
            if claimed is None and not released:
                # Nothing open: expired claims come back now rather than at the next tick.
                released = True
                if _release(now=now, project_id=project.pk):
                    continue
            if claimed is None:
                break
            new_ids.append(claimed[0])
            low = low or claimed[1]
        if refill and low:
            transaction.on_commit(partial(_refill, project_id=project.pk))
        rows = _items_with_cases(held_ids + new_ids)
    return sorted((rows[i] for i in held_ids), key=_held_order) + [rows[i] for i in new_ids]


def _held(params: dict[str, Any]) -> list[int]:
    """The ids of the items the analyst holds, renewing leases past their half."""
    rows = sql.fetch_all(_HELD_SQL, params)
    fresh = [int(i) for i, stale in rows if not stale]
    stale = [int(i) for i, is_stale in rows if is_stale]
    if stale:
        # Expired ones may have been released and taken meanwhile: only those still held count.
        ids = {f"id{k}": item_id for k, item_id in enumerate(stale)}
        statement = _RENEW_SQL.format(ids=", ".join(f"%({key})s" for key in ids))
        fresh += [int(r[0]) for r in sql.fetch_all(statement, {**params, **ids})]
    return fresh


_ITEM_FIELDS = tuple(f.attname for f in QueueItem._meta.concrete_fields)
_CASE_FIELDS = tuple(f.attname for f in Case._meta.concrete_fields)


def _items_with_cases(ids: list[int]) -> dict[int, QueueItem]:
    """The items with their cases loaded, as `select_related("case")` would, in plain SQL."""
    if not ids:
        return {}
    rows = sql.fetch_all(
        f"SELECT {sql.select_columns(QueueItem, _ITEM_FIELDS, 'q')}, "
        f"{sql.select_columns(Case, _CASE_FIELDS, 'c')} "
        f"FROM {_QI} q JOIN {Case._meta.db_table} c ON c.id = q.case_id "
        f"WHERE q.id IN ({', '.join(['%s'] * len(ids))})",
        ids,
    )
    out = {}
    for row in rows:
        item = sql.load(QueueItem, _ITEM_FIELDS, row[: len(_ITEM_FIELDS)])
        item.case = sql.load(Case, _CASE_FIELDS, row[len(_ITEM_FIELDS) :])
        out[item.pk] = item
    return out


def _refill(*, project_id: int) -> int:
    """Top up a queue running low: the model refills it once one exists, random until then.

    With a champion, a retrain (which ends by refreshing the queue from its scores) is asked
    for; random items are added only if nothing at all is left, so nobody waits meanwhile.
    """
    from active_learning.models import ModelStatus, ModelVersion
    from active_learning.services.retrain_requests import retrain_start
    from labeling.services.queue.fill import queue_fill_random

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    if ModelVersion.objects.filter(project=project, status=ModelStatus.CHAMPION).exists():
        retrain_start(project=project, reason="the queue is running low", automatic=True)
        if QueueItem.objects.filter(project=project, status=QueueStatus.OPEN).exists():
            return 0
    return queue_fill_random(project=project)


def _release(*, now: datetime, project_id: int | None) -> int:
    statement = _RELEASE_SQL.format(
        project="AND project_id = %(project)s" if project_id else "", lock=_lock_clause()
    )
    return sql.execute(statement, {"now": sql.db_time(now), "project": project_id})


def queue_release_expired(*, now: datetime | None = None, project: Project | None = None) -> int:
    """Return expired claims to the queue (all projects unless `project`); the number released.

    The minute tick runs it; a claim that finds nothing open runs it for its project too.
    """
    with transaction.atomic():
        return _release(now=now or timezone.now(), project_id=project.pk if project else None)


def queue_lease_renew(*, analyst: Any, item_ids: Iterable[int], now: datetime | None = None) -> int:
    """Extend the leases of the analyst's claimed items (the page calls this on activity).

    Returns how many items were renewed; items the analyst no longer holds are left alone.
    """
    now = now or timezone.now()
    return QueueItem.objects.filter(
        pk__in=list(item_ids), assigned_to=analyst, status=QueueStatus.CLAIMED
    ).update(lease_expires_at=now + timedelta(seconds=lease_seconds()), updated_at=now)
