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

from labeling import statements as st
from labeling.models import Case, Project, ProjectRole, QueueItem, QueueKind, QueueStatus
from labeling.services.queue.draws import (
    draw_is_evaluation,
    draw_is_gold,
    effective_evaluation_fraction,
)
from labeling.services.queue.policy import ALLOWED, DRAW, GOLD_STEPS, claim_order
from workbench.core import sql

ITEMS_SHOWN = st.ITEMS_SHOWN
CLAIM_ATTEMPTS = 3  # tries when the (case, analyst) constraint rejects a racing claim
LOW_CHECK_EVERY = 8


@dataclass(frozen=True)
class ClaimResult:
    """What the queue page shows: the current item and the next one, both held by the analyst."""

    current: QueueItem | None
    next: QueueItem | None


def lease_seconds() -> int:
    return int(getattr(settings, "QUEUE_LEASE_SECONDS", 600))


def _lock_clause() -> str:
    return "FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""


def _claim_one(*, kind: str, params: dict[str, Any], check_low: bool) -> tuple[int, bool] | None:
    """The claimed item's id and whether the open queue is now running low (if `check_low`);
    None when no open item of `kind` is left for this analyst."""
    kind = QueueKind(kind).value  # an enum value (raises otherwise): safe to write in the text
    statement = st.CLAIM.format(
        kind=kind,
        order=st.ORDER_RANDOM if kind == QueueKind.EVALUATION else st.ORDER_PRIORITY,
        unseen=st.GOLD_UNSEEN if kind == QueueKind.GOLD else "",
        lock=_lock_clause(),
        low_check=st.LOW if check_low else "FALSE",
    )
    row = sql.fetch_one(statement, params)
    return (int(row[0]), bool(row[1])) if row else None


def _claim_step(
    *,
    step: str,
    project: Project,
    analyst: Any,
    number: int,
    params: dict[str, Any],
    check_low: bool,
) -> tuple[int, bool] | None:
    """One step of the claim policy: a kind, or the seeded evaluation-or-pool draw (the other
    of the two when the drawn one is exhausted). Where the step serves pool items, a seeded gold
    draw may first serve a gold item (`policy.GOLD_STEPS`); the gold statement runs only then."""
    claim = partial(_claim_one, params=params, check_low=check_low)
    if step == DRAW:
        fraction = effective_evaluation_fraction(project)
        evaluation = draw_is_evaluation(
            split_seed=project.split_seed,
            analyst_id=analyst.pk,
            claim_number=number,
            evaluation_fraction=fraction,
        )
        if evaluation:
            return claim(kind=QueueKind.EVALUATION) or claim(kind=QueueKind.POOL)
        # The draw's pool share serves gold at gold_fraction / (1 - fraction): gold is
        # gold_fraction of all claims, and the evaluation draw is exactly as before.
        share = project.gold_fraction / max(1.0 - fraction, 1e-9)
        return (
            (_gold_drawn(project, analyst, number, share) and claim(kind=QueueKind.GOLD))
            or claim(kind=QueueKind.POOL)
            or claim(kind=QueueKind.EVALUATION)
        )
    if step in GOLD_STEPS and _gold_drawn(project, analyst, number, project.gold_fraction):
        return claim(kind=QueueKind.GOLD) or claim(kind=step)
    return claim(kind=step)


def _gold_drawn(project: Project, analyst: Any, number: int, share: float) -> bool:
    return project.gold_fraction > 0 and draw_is_gold(
        split_seed=project.split_seed, analyst_id=analyst.pk, claim_number=number, share=share
    )


def _held_order(item: QueueItem) -> tuple[float, float, int]:
    # Items an undo returned come first (latest undo first), then by claim time.
    front = -item.front_at.timestamp() if item.front_at else float("inf")
    claimed = item.claimed_at.timestamp() if item.claimed_at else 0.0
    return (front, claimed, item.pk)


def queue_claim_next(
    *,
    project: Project,
    analyst: Any,
    role: str = ProjectRole.ANALYST,
    now: datetime | None = None,
    refill: bool = True,
) -> ClaimResult:
    """The analyst's current and next items, claiming what is missing; reloads leak nothing.

    Items the analyst already holds come back first (their leases renewed). Expired claims of
    other analysts return to the queue at the minute tick (`queue_release_expired`), or at once
    when a claim finds nothing open. Each new claim follows the project's claim policy for
    `role` (`policy.claim_order`): by default analysts draw evaluation or pool from a seed of
    (project, analyst, claim count) at the project's evaluation fraction, taking the other kind
    when one is exhausted; reviewers take adjudication, then review, then pool items. Where a
    pool item would be served, a second seeded draw serves a gold item instead at the project's
    gold fraction of claims (a decided case this analyst never answered in any way). With
    `refill`, a queue running low is topped up after commit.
    """
    now = now or timezone.now()
    for attempt in range(CLAIM_ATTEMPTS):
        try:
            ordered = _claim(project=project, analyst=analyst, role=role, now=now, refill=refill)
            break
        except IntegrityError:
            # The (case, assigned_to) constraint caught a race with this analyst's own concurrent
            # write (a late submit or undo on the chosen case): the next attempt skips that case.
            if attempt == CLAIM_ATTEMPTS - 1 or transaction.get_connection().in_atomic_block:
                raise
    if not ordered and refill and _refill(project_id=project.pk):
        return queue_claim_next(project=project, analyst=analyst, role=role, now=now, refill=False)
    shown: list[QueueItem | None] = [*ordered, None, None]
    return ClaimResult(current=shown[0], next=shown[1])


def _claim(
    *, project: Project, analyst: Any, role: str, now: datetime, refill: bool
) -> list[QueueItem]:
    params: dict[str, Any] = {
        "project": project.pk,
        "analyst": analyst.pk,
        "now": sql.db_time(now),
        "lease": sql.db_time(now + timedelta(seconds=lease_seconds())),
        "renew": sql.db_time(now + timedelta(seconds=lease_seconds() / 2)),
        "low": max(2 * project.batch_size - 1, 0),  # under twice a batch open: refill
    }
    relaxed = connection.vendor == "postgresql" and not connection.in_atomic_block
    steps = claim_order(project=project, role=role)
    with transaction.atomic():
        cursor_row = sql.fetch_one(
            st.CURSOR.format(relaxed=st.RELAXED_COMMIT if relaxed else ""), params
        )
        assert cursor_row is not None
        claims = int(cursor_row[0])
        held_ids = _held(params, kinds=_may_take(role))
        new_ids: list[int] = []
        low = released = False
        while len(held_ids) + len(new_ids) < ITEMS_SHOWN:
            number = claims + len(new_ids)
            check_low = refill and number % LOW_CHECK_EVERY == 0
            claimed = None
            for step in steps:
                claimed = _claim_step(
                    step=step,
                    project=project,
                    analyst=analyst,
                    number=number,
                    params=params,
                    check_low=check_low,
                )
                if claimed is not None:
                    break
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


def _may_take(role: str) -> frozenset[str]:
    """The kinds of item a role may hold (`policy.ALLOWED`, the draw giving evaluation or pool,
    and gold wherever pool items are served)."""
    allowed = ALLOWED.get(role, ALLOWED[ProjectRole.ANALYST])
    kinds = {str(k) for k in allowed if k != DRAW}
    if allowed & GOLD_STEPS:
        kinds.add(str(QueueKind.GOLD))
    return frozenset(kinds)


def _held(params: dict[str, Any], *, kinds: frozenset[str]) -> list[int]:
    """The ids of the items the analyst holds, renewing leases past their half; held items of
    kinds outside `kinds` (their role changed) are released instead."""
    rows = sql.fetch_all(st.HELD, params)
    foreign = {f"id{k}": int(r[0]) for k, r in enumerate(rows) if str(r[2]) not in kinds}
    if foreign:
        statement = st.RELEASE_MINE.format(ids=", ".join(f"%({key})s" for key in foreign))
        sql.execute(statement, {**params, **foreign})
    rows = [r for r in rows if str(r[2]) in kinds]
    fresh = [int(i) for i, stale, _ in rows if not stale]
    stale = [int(i) for i, is_stale, _ in rows if is_stale]
    if stale:
        # Expired ones may have been released and taken meanwhile: only those still held count.
        ids = {f"id{k}": item_id for k, item_id in enumerate(stale)}
        statement = st.RENEW.format(ids=", ".join(f"%({key})s" for key in ids))
        fresh += [int(r[0]) for r in sql.fetch_all(statement, {**params, **ids})]
    return fresh


_ITEM_FIELDS = tuple(f.attname for f in QueueItem._meta.concrete_fields)
_CASE_FIELDS = tuple(f.attname for f in Case._meta.concrete_fields)


def _items_with_cases(ids: list[int]) -> dict[int, QueueItem]:
    """The items with their cases loaded, as `select_related("case")` would, in plain SQL."""
    if not ids:
        return {}
    rows = sql.fetch_all(st.items_with_cases(_ITEM_FIELDS, _CASE_FIELDS, len(ids)), ids)
    out = {}
    for row in rows:
        item = sql.load(QueueItem, _ITEM_FIELDS, row[: len(_ITEM_FIELDS)])
        item.case = sql.load(Case, _CASE_FIELDS, row[len(_ITEM_FIELDS) :])
        out[item.pk] = item
    return out


def _refill(*, project_id: int) -> int:
    """Top up a queue running low (`refill.queue_top_up`: model picks from the champion's
    stored scores while a retrain is pending, random without a model)."""
    from labeling.services.queue.refill import queue_top_up

    return queue_top_up(project_id=project_id)


def _release(*, now: datetime, project_id: int | None) -> int:
    statement = st.RELEASE_EXPIRED.format(
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
