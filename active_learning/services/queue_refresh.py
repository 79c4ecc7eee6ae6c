"""Refilling the pool part of the queue from the champion's scores, or by cold start, and keeping
the stocks of evaluation and gold items.

Open pool items whose case nobody has started are replaced; claimed items, evaluation items and
the remaining slots of overlapped cases are kept. Each new item carries its reason (a
`PickReason`: strategy, score, the two closest classes with probabilities, both sentences, made
through `active_learning.strategies`) and the 5 most similar labelled cases.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Exists, OuterRef

from active_learning.ml.coldstart import kmeans_medoids, select_zero_shot
from active_learning.ml.neighbours import top_k_similar
from active_learning.ml.pool_probe import probe_count
from active_learning.ml.strategies import Selection
from active_learning.ml.strategies.uncertainty import margin_uncertainty
from active_learning.selectors import (
    analyst_labels,
    evaluation_cases_to_draw,
    probe_cases_to_draw,
    project_classes,
    training_set,
)
from active_learning.services.embeddings import embedded_only, encoder_get, matrix_load
from active_learning.services.evaluation_sample import evaluation_design_ensure
from active_learning.services.queue_probe import probe_share, with_probes
from active_learning.services.scoring import Scores
from active_learning.strategies import (
    Pool,
    class_names,
    committee_training,
    pick_reason,
    strategy_select,
)
from labeling.contracts import ModelFacts, PickReason
from labeling.models import Case, Project, QueueItem, QueueKind, QueueStatus, Split
from labeling.services.queue import QueueEntry, queue_items_create
from labeling.services.queue.draws import effective_evaluation_fraction
from labeling.services.queue.fill import item_facts

TARGET_FACTOR = 4  # keep about 4 batches of open pool items
SIMILAR = 10  # stored per item; the card shows 5, preferring analysts' labels
SIM_CHUNK = 20_000  # labelled rows read from the memmap at a time


ALTERNATIVES = 2  # classes after the suggestion that a card shows


def model_facts(scores: Scores, i: int) -> ModelFacts:
    """The champion's view of row `i` of `scores`, as the item's card shows it."""
    proba = scores.proba[i]
    top = np.argsort(-proba, kind="stable")[: 1 + ALTERNATIVES]
    return ModelFacts(
        model_version_id=scores.version.pk,
        suggestion_id=scores.class_ids[int(top[0])],
        suggestion_p=round(float(proba[top[0]]), 4),
        alternatives=tuple((scores.class_ids[int(j)], round(float(proba[j]), 4)) for j in top[1:]),
    )


def target_size(project: Project) -> int:
    return max(20, TARGET_FACTOR * project.batch_size)


def _busy_case_ids(project: Project) -> set[int]:
    """Cases someone is working on or has labelled through the queue: not candidates."""
    return set(_busy_case_array(project).tolist())


def _busy_case_array(project: Project) -> np.ndarray:
    ids = QueueItem.objects.filter(
        project=project, status__in=[QueueStatus.CLAIMED, QueueStatus.DONE]
    ).values_list("case_id", flat=True)
    return np.unique(np.fromiter(ids.iterator(chunk_size=50_000), dtype=np.int64))


class MatrixRows:
    """Rows `rows` of a memory-mapped matrix, read on indexing: X[i], X[a:b], X[[i, j]].

    Stands in for `np.asarray(vectors[rows])` where only a few rows are used (strategies read
    their preselected candidates), so refreshing a 1M-case queue never holds 1.5 GB of vectors.
    """

    ndim = 2

    def __init__(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        self.vectors = vectors
        self.rows = rows
        self.shape = (int(rows.shape[0]), int(vectors.shape[1]))
        self.dtype = vectors.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self.vectors[self.rows[key]])


@transaction.atomic
def _cancel_untouched_open_items(project: Project) -> int:
    """Cancel open pool items of cases with no claimed or done item (no label started)."""
    started = QueueItem.objects.filter(
        case=OuterRef("case"), status__in=[QueueStatus.CLAIMED, QueueStatus.DONE]
    )
    return (
        QueueItem.objects.filter(project=project, status=QueueStatus.OPEN, kind=QueueKind.POOL)
        .exclude(Exists(started))
        .update(status=QueueStatus.CANCELLED)
    )


def _select(project: Project, scores: Scores, candidates: np.ndarray, n: int, X: Any) -> Selection:
    """Rows (indices into `candidates`) picked by the project's strategy, through the registry."""
    pool = Pool(
        proba=scores.proba[candidates],
        X=X,
        n=n,
        training=lambda: committee_training(project=project),
    )
    return strategy_select(strategy=str(project.strategy), pool=pool)


def similar_labelled(
    *, project: Project, X_query: np.ndarray, exclude_case_ids: np.ndarray
) -> list[list[dict[str, Any]]]:
    """For each query row, the SIMILAR most similar labelled pool cases (cosine, chunked).

    The numbers are `ml.neighbours.top_k_similar`'s; this maps its rows to cases and labels.

    `exclude_case_ids[i]` is query row i's own case: it is never its own neighbour.
    """
    labels = embedded_only(training_set(project=project))
    if len(labels) == 0 or X_query.shape[0] == 0:
        return [[] for _ in range(X_query.shape[0])]
    matrix = matrix_load()
    rows = matrix.rows_for(labels.hashes)
    # The query's own case, as a row of the labelled set (its case ids are sorted), or -1.
    at = np.minimum(np.searchsorted(labels.case_ids, exclude_case_ids), len(labels) - 1)
    own = np.where(labels.case_ids[at] == exclude_case_ids, at, -1)
    best_sim, best_idx = top_k_similar(
        X_query,
        lambda start, stop: matrix.vectors[rows[start:stop]],
        len(rows),
        SIMILAR,
        exclude=own,
        chunk_size=SIM_CHUNK,
    )
    out = []
    for sims, idx in zip(best_sim, best_idx, strict=True):
        hits = [
            {
                "case_id": int(labels.case_ids[i]),
                "label_id": int(labels.labels[i]),
                "similarity": round(float(s), 4),
                "from_analyst": bool(labels.from_analyst[i]),
            }
            for s, i in zip(sims, idx, strict=True)
            if i >= 0
        ]
        out.append(hits)
    return out


def refresh_queue(*, project: Project, scores: Scores | None) -> dict[str, Any]:
    """Rebuild the open pool part of the queue (cold start when there is no champion), then keep
    the stock of gold items (`gold_items_refresh`)."""
    from active_learning.services.gold_items import gold_items_refresh

    result = _refresh_pool(project=project, scores=scores)
    result["gold"] = gold_items_refresh(project=project, scores=scores)
    return result


def _refresh_pool(*, project: Project, scores: Scores | None) -> dict[str, Any]:
    cancelled = _cancel_untouched_open_items(project)
    busy = _busy_case_array(project)
    if scores is None:
        return _cold_start(project=project, busy=set(busy.tolist()), cancelled=cancelled)
    labelled = analyst_labels(project=project, split=str(Split.POOL))
    taken = np.union1d(busy, np.fromiter(labelled, dtype=np.int64, count=len(labelled)))
    available = ~scores.is_eval & ~_sorted_isin(scores.case_ids, taken)
    candidates = np.flatnonzero(available)
    n = min(target_size(project), len(candidates))
    if n == 0:
        return {"created": 0, "cancelled": cancelled, "strategy": project.strategy}
    probes = probe_cases_to_draw(
        project=project,
        candidates=scores.case_ids[candidates],
        count=probe_count(n, probe_share(project)),
    )
    if probes.size:
        candidates = candidates[~_sorted_isin(scores.case_ids[candidates], np.sort(probes))]
    matrix = matrix_load()
    X = MatrixRows(matrix.vectors, scores.rows[candidates])
    picked = _select(project, scores, candidates, n - probes.size, X)
    rows = candidates[picked.indices]
    similar = similar_labelled(
        project=project, X_query=X[picked.indices], exclude_case_ids=scores.case_ids[rows]
    )
    names = class_names(project_classes(project=project))
    strategy_entries = []
    for rank, (row, raw) in enumerate(zip(rows, picked.reasons, strict=True)):
        if similar[rank]:  # how unlike the labelled cases the pick is (diversity says so)
            raw = {**raw, "nearest_distance": 1.0 - max(h["similarity"] for h in similar[rank])}
        reason = pick_reason(raw, class_ids=scores.class_ids, names=names)
        strategy_entries.append(
            QueueEntry(
                int(scores.case_ids[row]),
                0.0,
                reason,
                scores.version.pk,
                similar[rank],
                model_facts(scores, int(row)),
            )
        )
    entries = _with_probes(project, scores, strategy_entries, probes)
    created = queue_items_create(project=project, entries=entries)
    return {
        "created": len(created),
        "cancelled": cancelled,
        "strategy": project.strategy,
        "probe": int(probes.size),
    }


def _with_probes(
    project: Project, scores: Scores | None, picks: list[QueueEntry], probes: np.ndarray
) -> list[QueueEntry]:
    """`queue_probe.with_probes`, a probe's card being a random pick's (`card_facts`): that is
    what it is."""
    facts = card_facts(project=project, scores=scores, case_ids=probes.tolist()) if scores else {}
    version = scores.version.pk if scores is not None else None
    cards = {}
    for case_id in probes.tolist():
        reason, similar, card = facts.get(case_id, (PickReason(strategy="random"), [], None))
        cards[case_id] = QueueEntry(case_id, 0.0, reason, version, similar, card)
    return with_probes(project, picks, probes, cards)


def _sorted_isin(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """`np.isin(values, members)` for sorted unique `members`, by binary search."""
    if members.size == 0:
        return np.zeros(values.shape[0], dtype=bool)
    pos = np.minimum(np.searchsorted(members, values), members.size - 1)
    return members[pos] == values


def _cold_start(*, project: Project, busy: set[int], cancelled: int) -> dict[str, Any]:
    """No model yet: half zero-shot seeds per class description, half k-means medoids."""
    cases = list(
        Case.objects.filter(project=project, split=Split.POOL)
        .exclude(pk__in=busy)
        .order_by("id")
        .values_list("id", "content_hash")
    )
    if not cases:
        return {"created": 0, "cancelled": cancelled, "strategy": "cold_start"}
    matrix = matrix_load()
    rows = matrix.rows_for(c[1] for c in cases)
    have = np.flatnonzero(rows >= 0)
    X = np.asarray(matrix.vectors[rows[have]])
    n_all = min(target_size(project), len(have))
    n_probe = probe_count(n_all, probe_share(project))
    n = n_all - n_probe
    classes = project_classes(project=project)
    descriptions = [f"{c.display_name or c.name}: {c.description}" for c in classes]
    class_vectors = encoder_get().encode(descriptions)
    zero_shot = select_zero_shot(X, class_vectors, n // 2 or 1, random_state=0)
    taken = np.zeros(len(have), dtype=bool)
    taken[zero_shot.indices] = True
    medoids = (
        kmeans_medoids(X, max(0, n - len(zero_shot)), exclude=taken, random_state=0)
        if n > len(zero_shot)
        else None
    )
    picks = [(int(i), r) for i, r in zip(zero_shot.indices, zero_shot.reasons, strict=True)]
    if medoids is not None:
        picks += [(int(i), r) for i, r in zip(medoids.indices, medoids.reasons, strict=True)]
    class_ids, names = [c.pk for c in classes], class_names(classes)
    entries = [
        QueueEntry(
            cases[have[i]][0], 0.0, pick_reason(r, class_ids=class_ids, names=names), None, []
        )
        for i, r in picks
    ]
    free = np.array([cases[i][0] for i in have.tolist()], dtype=np.int64)
    free = np.setdiff1d(free, np.array([e.case_id for e in entries], dtype=np.int64))
    probes = probe_cases_to_draw(project=project, candidates=free, count=n_probe)
    created = queue_items_create(
        project=project, entries=_with_probes(project, None, entries, probes)
    )
    return {
        "created": len(created),
        "cancelled": cancelled,
        "strategy": "cold_start",
        "probe": int(probes.size),
    }


def _rows_of(scores: Scores, case_ids: list[int]) -> tuple[list[int], np.ndarray]:
    """The cases of `case_ids` that `scores` holds, and their rows (scores are in id order:
    a binary search, never a dict over a million ids)."""
    wanted = np.asarray(case_ids, dtype=np.int64)
    if wanted.size == 0 or scores.case_ids.size == 0:
        return [], np.zeros(0, dtype=np.int64)
    pos = np.minimum(np.searchsorted(scores.case_ids, wanted), scores.case_ids.size - 1)
    found = scores.case_ids[pos] == wanted
    return wanted[found].tolist(), pos[found]


def card_facts(
    *, project: Project, scores: Scores, case_ids: list[int]
) -> dict[int, tuple[PickReason, list[dict[str, Any]], ModelFacts]]:
    """For evaluation, gold and pool-probe cases: a random pick's reason (which they are), and
    the similar cases and model facts pool items carry.

    Evaluation items are drawn at random, never by a model, and gold items are decided cases
    served back; their items (and the pool probe's picks) state the same model facts about the
    case as a random pool pick's (never its decided label: a case is never its own neighbour).
    Their cards leave out the suggestion and every label (`labeling.selectors_queue.unaided`).
    """
    present, at = _rows_of(scores, case_ids)
    if not present:
        return {}
    matrix = matrix_load()
    X = np.asarray(matrix.vectors[scores.rows[at]])
    similar = similar_labelled(
        project=project, X_query=X, exclude_case_ids=np.array(present, dtype=np.int64)
    )
    uncertainty = margin_uncertainty(scores.proba[at])
    names = class_names(project_classes(project=project))
    facts = {}
    for n, (case_id, i) in enumerate(zip(present, at.tolist(), strict=True)):
        top = np.argsort(-scores.proba[i])[:2]
        # Drawn at random, so said as a random pick's (true, and what a random pool pick says);
        # the model's numbers stay facts of the card, never a reason it was picked.
        raw = {
            "strategy": "random",
            "score": float(uncertainty[n]),
            "classes": top.tolist(),
            "probas": scores.proba[i, top].tolist(),
        }
        reason = pick_reason(raw, class_ids=scores.class_ids, names=names)
        facts[case_id] = (reason, similar[n], model_facts(scores, i))
    return facts


def eval_items_refresh_facts(*, project: Project, scores: Scores) -> int:
    """Give open evaluation items the current champion's facts (their order never changes)."""
    items = list(
        QueueItem.objects.filter(
            project=project, status=QueueStatus.OPEN, kind=QueueKind.EVALUATION
        )
    )
    return items_refresh_facts(project=project, scores=scores, items=items)


def items_refresh_facts(*, project: Project, scores: Scores, items: list[QueueItem]) -> int:
    """Give `items` (evaluation or gold) the current champion's reason, similar cases and facts,
    as `card_facts` makes them; returns how many items were written."""
    facts = card_facts(project=project, scores=scores, case_ids=[i.case_id for i in items])
    for item in items:
        if item.case_id in facts:
            reason, item.similar_cases, card = facts[item.case_id]
            item.reason = reason.to_json()
            for name, value in item_facts(card).items():
                setattr(item, name, value)
            item.model_version_id = scores.version.pk
    QueueItem.objects.bulk_update(
        items,
        ["reason", "similar_cases", "model_version_id", *item_facts(None)],
        batch_size=1000,
    )
    return len(items)


def eval_items_top_up(*, project: Project, scores: Scores | None = None) -> int:
    """Keep a stock of open evaluation items, drawn in the evaluation design's order (stratified by
    the first champion's predicted class, `evaluation_sample`), never by a model's pick order.

    The stock is about a batch of items, scaled up while the claim draw serves evaluation items
    at the warm-up share; each drawn case gives `project.evaluation_overlap` of them (at least),
    so the cases drawn are the missing items divided by that.
    """
    if project.evaluation_fraction <= 0:
        return 0
    evaluation_design_ensure(project=project, scores=scores)
    share = effective_evaluation_fraction(project)
    base = max(10, project.batch_size)
    want = math.ceil(base * max(1.0, share / max(project.evaluation_fraction, 1e-9)))
    have = QueueItem.objects.filter(
        project=project, status=QueueStatus.OPEN, kind=QueueKind.EVALUATION
    ).count()
    if have >= want:
        return 0
    per_case = max(1, int(project.evaluation_overlap))
    ids = evaluation_cases_to_draw(project=project, count=math.ceil((want - have) / per_case))
    facts = card_facts(project=project, scores=scores, case_ids=ids) if scores else {}
    version = scores.version.pk if scores is not None else None
    entries = []
    for case_id in ids:
        if case_id in facts:
            reason, similar, card = facts[case_id]
            entries.append(QueueEntry(case_id, 0.0, reason, version, similar, card))
        else:
            entries.append(QueueEntry(case_id, 0.0, PickReason(strategy="random"), version, []))
    return len(queue_items_create(project=project, entries=entries))
