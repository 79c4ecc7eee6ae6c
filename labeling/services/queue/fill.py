"""Creating queue items: the reusable helper the pipeline calls, and the interim random fill.

An entry is (case_id, priority, reason, model_version_id, similar_cases, facts, kind): the reason
and facts are the typed values of `labeling.contracts`. Each queued case gets `project.overlap`
items (slots after its existing ones) when its seeded overlap draw falls under
`project.overlap_fraction`, else one; eval-split cases give evaluation items, at least
`project.evaluation_overlap` of them (1 by default; at 2, two analysts who agree settle an
evaluation label and a tie goes to a reviewer), other cases pool items unless the entry names
its kind (review, adjudication, gold). All slots of an evaluation case share one serve key, so
its analysts take it one after the other rather than batches apart. A review or adjudication
item is one item (one decision wanted, whatever the overlap), on any split, and is not blocked by a
case's open labelling items, only by an open item of its own kind. A gold item (a decided case
served back, unmarked, to measure analysts) is one item too, on pool-split cases only.

Noise-aware overlap: with `project.noise_aware_overlap`, a pool pick whose model margin is below
`project.overlap_margin`, or whose suggested class or given label is prohibited, gets a second
slot, for at most `project.overlap_budget` of the call's pool cases; its items' reason details
say so (`NOISE_AWARE`), so benchmarks can tell them apart.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import Exists, Max, OuterRef

from labeling.contracts import ModelFacts, PickReason
from labeling.models import (
    Case,
    LabelClass,
    Project,
    QueueItem,
    QueueKind,
    QueueStatus,
    Split,
    Tier,
)
from labeling.services.queue.draws import order_key, overlap_slots

CHUNK = 5000
LOW_FACTOR = 2  # the open queue is low below LOW_FACTOR x batch_size items
FILL_FACTOR = 4  # a random fill tops it up to about FILL_FACTOR x batch_size


class QueueEntry(NamedTuple):
    case_id: int
    priority: float = 0.0
    reason: PickReason | dict[str, Any] = {}
    model_version_id: int | None = None
    similar_cases: list[Any] = []
    facts: ModelFacts | None = None
    kind: str | None = None
    group: Sequence[int] = ()  # review items: near-duplicates the decision may extend to


TEXT_CHANGED = PickReason(
    strategy="text_changed",
    sentence="The text changed since it was labelled: it needs a fresh label.",
    sentence_blind="The text changed since it was labelled: it needs a fresh label.",
)
RANDOM = PickReason(strategy="random")


DECISION_KINDS = (QueueKind.REVIEW, QueueKind.ADJUDICATION)
LABELLING_KINDS = (QueueKind.POOL, QueueKind.EVALUATION)  # what analysts take
# One item per entry, whatever the overlap: one decision wanted, or one gold answer at a time.
SINGLE_KINDS = (*DECISION_KINDS, QueueKind.GOLD)
NOISE_AWARE = "noise_aware_overlap"  # the reason details' key of a noise-aware overlapped case


def _kind(entry: QueueEntry, split: str) -> str:
    if entry.kind in DECISION_KINDS:
        return str(entry.kind)
    if split == Split.EVAL:
        return str(QueueKind.EVALUATION)
    return str(entry.kind or QueueKind.POOL)


_GROUPS = ("decision", "gold", "label")


def _group(kind: str | None) -> str:
    """Which live item of a case blocks a new one: decisions, gold and labels block their own."""
    if kind in DECISION_KINDS:
        return "decision"
    return "gold" if kind == QueueKind.GOLD else "label"


def item_facts(facts: ModelFacts | None) -> dict[str, Any]:
    """A queue item's model-fact fields from the typed facts (all empty without a model)."""
    if facts is None:
        return {"suggestion_id": None, "suggestion_p": None, "alternatives": []}
    return {
        "suggestion_id": facts.suggestion_id,
        "suggestion_p": facts.suggestion_p,
        "alternatives": [[int(c), float(p)] for c, p in facts.alternatives],
    }


def facts_margin(facts: ModelFacts | None) -> float | None:
    """p(top) - p(second) of the model's facts (the second is 0 without alternatives); None
    without a model's probability."""
    if facts is None or facts.suggestion_p is None:
        return None
    second = facts.alternatives[0][1] if facts.alternatives else 0.0
    return float(facts.suggestion_p) - float(second)


def _chunks(values: Sequence[int]) -> list[Sequence[int]]:
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


class _Planned(NamedTuple):
    entry: QueueEntry
    kind: str
    slots: int
    noise: dict[str, Any] | None = None  # why the case got a noise-aware second slot


def _noise_aware(
    *, project: Project, planned: list[_Planned], given: dict[int, int | None]
) -> list[_Planned]:
    """Give a second slot to the pool picks most likely to be mislabelled, within the budget.

    A pool pick qualifies when the model's margin (top two classes) is below
    `project.overlap_margin`, or its suggested class or given label is in the prohibited tier.
    At most `project.overlap_budget` of the call's pool cases get the extra slot: prohibited
    ones first (a wrong label there costs most), then by margin, lowest first, then in the
    entries' order. Picks the random overlap draw already gave two or more slots need none.
    """
    pool = [i for i, p in enumerate(planned) if p.kind == QueueKind.POOL]
    budget = int(project.overlap_budget * len(pool) + 1e-9)
    if not project.noise_aware_overlap or budget <= 0:
        return planned
    prohibited = set(
        LabelClass.objects.filter(project=project, tier=Tier.PROHIBITED).values_list(
            "pk", flat=True
        )
    )
    ranked = []
    for i in pool:
        entry = planned[i].entry
        if planned[i].slots >= 2:
            continue
        margin = facts_margin(entry.facts)
        suggested = entry.facts.suggestion_id if entry.facts is not None else None
        severe = suggested in prohibited or given.get(entry.case_id) in prohibited
        if severe or (margin is not None and margin < project.overlap_margin):
            ranked.append((not severe, 1.0 if margin is None else margin, i, margin, severe))
    out = list(planned)
    for *_, i, margin, severe in sorted(ranked)[:budget]:
        noise = {"margin": None if margin is None else round(margin, 4), "prohibited": severe}
        out[i] = planned[i]._replace(slots=2, noise=noise)
    return out


def _reason(entry: QueueEntry, noise: dict[str, Any] | None, *, extra: bool) -> dict[str, Any]:
    """The item's stored reason; a noise-aware overlapped case's items say so in the details
    (never in the sentences: analysts see nothing different), the added slot as `extra_slot`."""
    reason = PickReason.from_json(entry.reason).to_json()
    if noise is not None:
        reason["details"] = {**reason["details"], NOISE_AWARE: {**noise, "extra_slot": extra}}
    return reason


def cases_lock(*, project: Project, case_ids: Sequence[int]) -> None:
    """Lock the cases' rows in id order, inside the caller's transaction.

    The lock order of every writer is case, then its items, then the project (a label takes its
    case's lock first and the project's last). A bulk writer of items that takes the project's
    lock (`queue_items_create`) must lock the cases it touches first, or a label on one of them
    (which may insert a decision item at the same slot, then wait for the project) deadlocks
    with it.
    """
    ids = sorted(set(case_ids))
    for start in range(0, len(ids), CHUNK):
        list(
            Case.objects.select_for_update()
            .filter(project=project, pk__in=ids[start : start + CHUNK])
            .order_by("pk")
            .values_list("pk", flat=True)
        )


@transaction.atomic
def queue_items_create(
    *, project: Project, entries: Sequence[QueueEntry | tuple[Any, ...]]
) -> list[QueueItem]:
    """Queue the entries' cases (one item per wanted label); returns the items created.

    Cases of other projects and cases that already have an open or claimed item are skipped, so
    queueing a case twice never doubles its wanted labels; gold entries of eval-split cases or of
    cases with any live item are skipped too (gold never reaches evaluation). An evaluation
    item's case gets at least `project.evaluation_overlap` slots. Pool picks likely to be
    mislabelled get a second slot on top of the random overlap draw (`_noise_aware`). Takes
    the project's row lock, so two fills never race for the same slots.
    """
    Project.objects.select_for_update().filter(pk=project.pk).values_list("pk").first()
    rows = [QueueEntry(*e) for e in entries]
    ids = list(dict.fromkeys(e.case_id for e in rows))
    splits: dict[int, str] = {}
    given: dict[int, int | None] = {}
    queued: set[tuple[int, str]] = set()  # (case, `_group` of the kind) with a live item
    next_slot: dict[int, int] = {}
    for chunk in _chunks(ids):
        for case_id, split, given_id in (
            Case.objects.filter(project=project, pk__in=chunk)
            .order_by()
            .values_list("pk", "split", "given_label_id")
        ):
            splits[case_id], given[case_id] = split, given_id
        queued.update(
            (case_id, _group(kind))
            for case_id, kind in QueueItem.objects.filter(
                case_id__in=chunk, status__in=[QueueStatus.OPEN, QueueStatus.CLAIMED]
            ).values_list("case_id", "kind")
        )
        next_slot.update(
            (row["case_id"], row["top"] + 1)
            for row in QueueItem.objects.filter(case_id__in=chunk)
            .values("case_id")
            .annotate(top=Max("slot"))
        )
    planned: list[_Planned] = []
    for entry in rows:
        case_id = entry.case_id
        group = _group(entry.kind)
        if case_id not in splits or (case_id, group) in queued:
            continue
        if entry.kind == QueueKind.GOLD and (
            splits[case_id] == Split.EVAL or any((case_id, g) in queued for g in _GROUPS)
        ):
            continue  # gold: pool cases only, and none someone is labelling or deciding now
        queued.add((case_id, group))
        kind = _kind(entry, splits[case_id])
        k = (
            1
            if entry.kind in SINGLE_KINDS
            else overlap_slots(
                split_seed=project.split_seed,
                case_id=case_id,
                overlap=project.overlap,
                overlap_fraction=project.overlap_fraction,
            )
        )
        if kind == QueueKind.EVALUATION:
            k = max(k, int(project.evaluation_overlap))
        planned.append(_Planned(entry, kind, k))
    planned = _noise_aware(project=project, planned=planned, given=given)
    items: list[QueueItem] = []
    for entry, kind, k, noise in planned:
        case_id = entry.case_id
        first = next_slot.get(case_id, 0)
        next_slot[case_id] = first + k
        for slot in range(first, first + k):
            items.append(
                QueueItem(
                    project=project,
                    case_id=case_id,
                    slot=slot,
                    kind=kind,
                    priority=entry.priority,
                    reason=_reason(entry, noise, extra=slot == first + k - 1 and k > 1),
                    model_version_id=entry.facts.model_version_id
                    if entry.facts
                    else entry.model_version_id,
                    similar_cases=list(entry.similar_cases),
                    group=list(entry.group),
                    **item_facts(entry.facts),
                    # An evaluation case's slots share its first slot's key: served one after
                    # the other.
                    random_key=order_key(
                        split_seed=project.split_seed,
                        case_id=case_id,
                        slot=first if kind == QueueKind.EVALUATION else slot,
                    ),
                )
            )
    return QueueItem.objects.bulk_create(items, batch_size=1000)


def queue_fill_random(
    *, project: Project, cases: int | None = None, seed: int | None = None
) -> int:
    """Queue random cases that have no item yet; returns the number of items created.

    The cases are a scan of the `content_hash` index from a random point (seeded by `seed`), so
    a fill costs about as much as the cases it takes, not a random sort of every case.

    Without `cases`, does nothing unless the open queue is low (< 2 x batch size) and then tops
    it up to about 4 x batch size. Call it after an import and when the queue runs low (the claim
    does the latter); the pipeline replaces it with model-chosen items.
    """
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).values_list("pk").first()
        if cases is None:
            target = FILL_FACTOR * project.batch_size
            open_items = QueueItem.objects.filter(
                project=project, status=QueueStatus.OPEN, kind__in=LABELLING_KINDS
            )
            n_open = open_items.values("pk")[:target].count()
            if n_open >= LOW_FACTOR * project.batch_size:
                return 0
            cases = target - n_open
        rng = random.Random(seed)
        ids = _sample_unqueued(project=project, count=cases, start=f"{rng.getrandbits(256):064x}")
        entries = [QueueEntry(i, rng.random(), RANDOM) for i in ids]
        return len(queue_items_create(project=project, entries=entries))


def _sample_unqueued(*, project: Project, count: int, start: str) -> list[int]:
    """Up to `count` ids of the project's cases without a non-cancelled item, taken in content
    hash order from the random point `start`, wrapping around at the end.

    Content hashes are sha256 digests, uniform over the hash space, so an arc from a random start
    is a uniform-enough sample; the scan walks the `content_hash` index and stops at `count`
    (no random sort of the whole table). Equal texts share a hash and sit side by side.
    """
    if count <= 0:
        return []
    has_item = QueueItem.objects.filter(case=OuterRef("pk")).exclude(status=QueueStatus.CANCELLED)
    unqueued = Case.objects.filter(project=project).exclude(Exists(has_item))
    ids = list(
        unqueued.filter(content_hash__gte=start)
        .order_by("content_hash", "pk")
        .values_list("pk", flat=True)[:count]
    )
    if len(ids) < count:
        ids += (
            unqueued.filter(content_hash__lt=start)
            .order_by("content_hash", "pk")
            .values_list("pk", flat=True)[: count - len(ids)]
        )
    return ids


def queue_cases_again(*, project: Project, case_ids: Sequence[int], chunk: int = CHUNK) -> int:
    """Queue cases whose text changed for a fresh label; returns the items created.

    Their done items become history first: status `cancelled`, with `assigned_to` and
    `completed_at` kept (who labelled the old text, and when). A cancelled item is outside the
    one-per-analyst-case and case-slot constraints and the claim's "did this case" check, so
    the analyst who labelled the old text can claim the case again.
    """
    from django.utils import timezone

    reason = TEXT_CHANGED
    with transaction.atomic():
        for start in range(0, len(case_ids), chunk):
            QueueItem.objects.filter(
                project=project,
                case_id__in=case_ids[start : start + chunk],
                status=QueueStatus.DONE,
            ).update(status=QueueStatus.CANCELLED, updated_at=timezone.now())
        entries = [QueueEntry(case_id, 1.0, reason) for case_id in case_ids]
        return len(queue_items_create(project=project, entries=entries))
