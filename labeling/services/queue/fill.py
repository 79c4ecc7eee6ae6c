"""Creating queue items: the reusable helper the pipeline calls, and the interim random fill.

An entry is (case_id, priority, reason, model_version_id, similar_cases, facts, kind): the reason
and facts are the typed values of `labeling.contracts`. Each queued case gets `project.overlap`
items (slots after its existing ones) when its seeded overlap draw falls under
`project.overlap_fraction`, else one; eval-split cases give evaluation items, other cases pool
items unless the entry names its kind (review, adjudication). A review or adjudication item is
one item (one decision wanted, whatever the overlap), on any split, and is not blocked by a
case's open labelling items, only by an open item of its own kind.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import Exists, Max, OuterRef

from labeling.contracts import ModelFacts, PickReason
from labeling.models import Case, Project, QueueItem, QueueKind, QueueStatus, Split
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


def _kind(entry: QueueEntry, split: str) -> str:
    if entry.kind in DECISION_KINDS:
        return str(entry.kind)
    if split == Split.EVAL:
        return str(QueueKind.EVALUATION)
    return str(entry.kind or QueueKind.POOL)


def item_facts(facts: ModelFacts | None) -> dict[str, Any]:
    """A queue item's model-fact fields from the typed facts (all empty without a model)."""
    if facts is None:
        return {"suggestion_id": None, "suggestion_p": None, "alternatives": []}
    return {
        "suggestion_id": facts.suggestion_id,
        "suggestion_p": facts.suggestion_p,
        "alternatives": [[int(c), float(p)] for c, p in facts.alternatives],
    }


def _chunks(values: Sequence[int]) -> list[Sequence[int]]:
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


@transaction.atomic
def queue_items_create(
    *, project: Project, entries: Sequence[QueueEntry | tuple[Any, ...]]
) -> list[QueueItem]:
    """Queue the entries' cases (one item per wanted label); returns the items created.

    Cases of other projects and cases that already have an open or claimed item are skipped, so
    queueing a case twice never doubles its wanted labels. Takes the project's row lock, so two
    fills never race for the same slots.
    """
    Project.objects.select_for_update().filter(pk=project.pk).values_list("pk").first()
    rows = [QueueEntry(*e) for e in entries]
    ids = list(dict.fromkeys(e.case_id for e in rows))
    splits: dict[int, str] = {}
    queued: set[tuple[int, bool]] = set()  # (case, whether a decision item) with a live item
    next_slot: dict[int, int] = {}
    for chunk in _chunks(ids):
        splits.update(
            Case.objects.filter(project=project, pk__in=chunk).order_by().values_list("pk", "split")
        )
        queued.update(
            (case_id, kind in DECISION_KINDS)
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
    items: list[QueueItem] = []
    for entry in rows:
        case_id = entry.case_id
        decision = entry.kind in DECISION_KINDS
        if case_id not in splits or (case_id, decision) in queued:
            continue
        queued.add((case_id, decision))
        first = next_slot.get(case_id, 0)
        k = (
            1
            if decision
            else overlap_slots(
                split_seed=project.split_seed,
                case_id=case_id,
                overlap=project.overlap,
                overlap_fraction=project.overlap_fraction,
            )
        )
        next_slot[case_id] = first + k
        for slot in range(first, first + k):
            items.append(
                QueueItem(
                    project=project,
                    case_id=case_id,
                    slot=slot,
                    kind=_kind(entry, splits[case_id]),
                    priority=entry.priority,
                    reason=PickReason.from_json(entry.reason).to_json(),
                    model_version_id=entry.facts.model_version_id
                    if entry.facts
                    else entry.model_version_id,
                    similar_cases=list(entry.similar_cases),
                    group=list(entry.group),
                    **item_facts(entry.facts),
                    random_key=order_key(split_seed=project.split_seed, case_id=case_id, slot=slot),
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
