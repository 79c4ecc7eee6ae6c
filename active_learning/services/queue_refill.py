"""Topping up the pool queue from the champion's stored predictions, between retrains.

When the open queue runs low, labeling (`labeling.services.queue.refill`) asks for picks at once
through the `queue_refill` hook, while the retrain it asked for may still wait for a worker.
The picks are the project's strategy over the champion's stored `Prediction` rows where the
strategy needs nothing else (least confidence, margin, entropy); strategies that need vectors
or a committee fall back to margin. The candidates are the rows stored with their top-k: the
scoring's reserve of the most uncertain pool cases by margin and by confidence (four times
the largest buffer each), then the random stop set; one query reads them in the measure's order
from a partial index (`prediction_version_uncertainty` / `_confidence`). No model, no vectors
(so no similar cases on these cards). Light: web processes run it after a commit.

While evaluation evidence is short, the pool probe takes its share of the top-up as it does of
a refresh (`queue_probe`): the next unsettled pool cases by the probe's keys, spread among the
picks, their cards a random pick's with the champion's stored facts. Without it, a queue kept
full between retrains would starve the warm-up comparison of the labels it judges on.

Measures of a stored row's top-k (p1 >= p2 >= ...): margin p1 - p2 (lowest first), least
confidence 1 - p1, entropy with the rest of the mass spread evenly over the other classes
(`ml.stored.entropy_from_top`), ranked among the ENTROPY_PRESELECT x n most uncertain by margin.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from django.db.models import Exists, OuterRef, Q

from active_learning.hooks import prediction_facts
from active_learning.ml.pool_probe import probe_count
from active_learning.ml.stored import entropy_from_top
from active_learning.models import ModelStatus, ModelVersion, Prediction
from active_learning.reasons import class_names, pick_reason
from active_learning.selectors import ANALYST_SOURCES, probe_cases_to_draw, project_classes
from active_learning.services.queue_probe import probe_share, with_probes
from labeling.models import Case, Project, QueueItem, QueueStatus, ResolvedLabel, Split
from labeling.services.queue import QueueEntry, queue_items_create

STORED_MEASURES = ("least_confidence", "margin", "entropy")
FALLBACK = "margin"
ENTROPY_PRESELECT = 10  # entropy has no column: it ranks the 10n most uncertain by margin
ALTERNATIVES = 2  # classes after the suggestion that a card shows (as the refresh gives)
SOURCE = "stored_scores"  # the reason's `source` detail: picked without a retrain
_TOP_WIDTH = 5  # scoring.TOP_K (not imported: scoring loads the model stack)
_FIELDS = (
    "case_id",
    "model_version_id",
    "predicted_label_id",
    "confidence",
    "uncertainty",
    "top_k",
)


def queue_refill_stored(*, project: Project, count: int) -> int | None:
    """Queue up to `count` pool cases picked from the champion's stored predictions.

    Cases with a live or done item, an analyst's label or a reviewer's exclusion, and
    evaluation-split cases are never picked. Returns the items created; None when the project
    has no champion, or its champion has no stored prediction (the caller fills at random).
    Expects the caller to hold the project's row lock (`queue_items_create` takes it anyway).
    """
    version = (
        ModelVersion.objects.filter(project_id=project.pk, status=ModelStatus.CHAMPION)
        .values_list("pk", flat=True)
        .first()
    )
    if version is None:
        return None
    if count <= 0:
        return 0
    measure = str(project.strategy) if project.strategy in STORED_MEASURES else FALLBACK
    n_probe = probe_count(count, probe_share(project))
    probes = (
        probe_cases_to_draw(
            project=project, candidates=free_pool_case_ids(project=project), count=n_probe
        )
        if n_probe
        else np.zeros(0, dtype=np.int64)
    )
    count -= probes.size
    limit = count * ENTROPY_PRESELECT if measure == "entropy" else count
    rows = stored_candidates(version_id=version, measure=measure, limit=limit, skip=probes)
    if not rows and not Prediction.objects.filter(model_version_id=version).exists():
        return None  # no stored scores at all: the caller fills at random, probe or not
    classes = project_classes(project=project)
    tops = [_top(row) for row in rows]
    scores = _scores(tops, measure=measure, n_classes=len(classes))
    if measure == "entropy":  # highest first; the margin order breaks ties
        order = np.argsort(-scores, kind="stable")[:count]
    else:  # the query's order is the measure's
        order = np.arange(min(count, len(rows)))
    names = class_names(classes)
    details = {"source": SOURCE}
    if measure != project.strategy:
        details["project_strategy"] = str(project.strategy)
    entries = []
    for rank, i in enumerate(order.tolist()):
        shown = tops[i][:2]
        raw = {
            "strategy": measure,
            "score": float(scores[i]),
            "rank": rank,
            "class_ids": [c for c, _ in shown],
            "probas": [p for _, p in shown],
            **details,
        }
        facts = prediction_facts(rows[i])
        entries.append(
            QueueEntry(
                rows[i].case_id,
                float(len(order) - rank),  # the measure's order, best first
                pick_reason(raw, class_ids=[], names=names),
                version,
                [],
                dataclasses.replace(facts, alternatives=facts.alternatives[:ALTERNATIVES]),
            )
        )
    if probes.size:
        entries = with_probes(project, entries, probes, _probe_cards(version, probes, names))
    return len(queue_items_create(project=project, entries=entries))


def _live(field: str = "case_id") -> Exists:
    """A queue item not cancelled (open, claimed or done) exists for the row's case."""
    items = QueueItem.objects.filter(case_id=OuterRef(field))
    return Exists(items.exclude(status=QueueStatus.CANCELLED))


def _decided(field: str = "case_id") -> Exists:
    """An analyst's label or a reviewer's exclusion exists for the row's case."""
    labels = ResolvedLabel.objects.filter(case_id=OuterRef(field))
    return Exists(labels.filter(Q(source__in=ANALYST_SOURCES) | Q(excluded=True)))


def stored_candidates(
    *, version_id: int, measure: str, limit: int, skip: np.ndarray | None = None
) -> list[Prediction]:
    """The version's stored pool predictions with top-k still to queue, most informative first
    by `measure` (entropy: by margin), `limit` at most, none of the cases in `skip`: one query
    walking a partial index."""
    if limit <= 0:
        return []
    if measure == "least_confidence":
        order = ("confidence", "case_id")
    else:
        order = ("-uncertainty", "case_id")
    rows = Prediction.objects.filter(
        model_version_id=version_id,
        top_k__isnull=False,
        uncertainty__isnull=False,
        case__split=Split.POOL,
    )
    if skip is not None and skip.size:
        rows = rows.exclude(case_id__in=skip.tolist())
    return list(rows.exclude(_live()).exclude(_decided()).order_by(*order).only(*_FIELDS)[:limit])


def free_pool_case_ids(*, project: Project) -> np.ndarray:
    """Ids of the pool cases still to queue (no live item, no analyst's label, not excluded), in
    id order: the probe's candidates. Read only while the probe runs (warm-up, early on)."""
    ids = (
        Case.objects.filter(project=project, split=Split.POOL)
        .exclude(_live("pk"))
        .exclude(_decided("pk"))
        .values_list("pk", flat=True)
    )
    return np.fromiter(ids.iterator(chunk_size=20_000), dtype=np.int64)


def _probe_cards(version: int, probes: np.ndarray, names: dict[int, str]) -> dict[int, QueueEntry]:
    """A random pick's card for each probe case: the champion's stored facts where it has a row
    (a compact row: the suggestion alone; with top-k, the two closest classes too, said as
    facts, never as why it was picked)."""
    cards = {c: QueueEntry(c, model_version_id=version) for c in probes.tolist()}
    stored = Prediction.objects.filter(model_version_id=version, case_id__in=probes.tolist())
    for row in stored.only(*_FIELDS):
        shown = _top(row)[:2]
        raw = {
            "strategy": "random",
            "score": float(row.uncertainty) if row.uncertainty is not None else None,
            "class_ids": [c for c, _ in shown],
            "probas": [p for _, p in shown],
            "source": SOURCE,
        }
        facts = prediction_facts(row)
        cards[row.case_id] = QueueEntry(
            row.case_id,
            0.0,
            pick_reason(raw, class_ids=[], names=names),
            version,
            [],
            dataclasses.replace(facts, alternatives=facts.alternatives[:ALTERNATIVES]),
        )
    return cards


def _top(row: Prediction) -> list[tuple[int, float]]:
    """A row's stored classes and probabilities, best first."""
    top = [r for r in (row.top_k or []) if isinstance(r, list | tuple) and len(r) == 2]
    return [(int(c), float(p)) for c, p in top]


def _scores(tops: list[list[tuple[int, float]]], *, measure: str, n_classes: int) -> np.ndarray:
    """Each row's `measure` (margin: p1 - p2, lower is more informative; the others higher)."""
    known = np.full((len(tops), _TOP_WIDTH), np.nan)
    for i, top in enumerate(tops):
        values = [p for _, p in top[:_TOP_WIDTH]]
        known[i, : len(values)] = values
    if measure == "least_confidence":
        return 1.0 - known[:, 0]
    if measure == "entropy":
        return entropy_from_top(known, max(n_classes, int((~np.isnan(known)).sum(axis=1).max())))
    return known[:, 0] - np.nan_to_num(known[:, 1], nan=0.0)
