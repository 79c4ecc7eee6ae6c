"""Review items from the label-issue detector, and the measured noise of the legacy labels.

After each detection (`issues.find_label_issues`), `review_items_refresh` keeps the open
pipeline part of the review queue (`QueueKind.REVIEW` items of strategy `label_issue`) at the
best `review_target` prune-set cases, ranked by `review_priority` (error probability, from the
out-of-fold margin `detector_error_p`, x tier impact). Cases a reviewer or adjudicator decided or excluded get none; an analyst's second
opinion and claimed items are never touched. Flagged evaluation-split cases get none either: their
labels never train, and their evaluation labels come from evaluation draws only, so the review
budget goes to pool cases (their scores and suggestions show on the case page and in exports). `noise_estimates_write` stores, per given-label
source and class, how many reviewed given labels were wrong (`LabelNoiseEstimate`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from active_learning.models import LabelIssue, LabelNoiseEstimate
from active_learning.selectors import project_classes
from active_learning.services.embeddings import matrix_load
from active_learning.services.queue_refresh import similar_labelled
from active_learning.strategies import class_names
from labeling.contracts import ModelFacts, PickReason
from labeling.models import (
    Case,
    Project,
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolvedLabel,
    Split,
)
from labeling.services.queue import QueueEntry, queue_items_create
from labeling.services.queue.fill import cases_lock, item_facts
from labeling.services.resolution import AUTHORITATIVE_SOURCES
from labeling.services.review_requests import detector_error_p, review_priority
from workbench.core.models import Job

STRATEGY = "label_issue"
TARGET_FACTOR = 10  # open pipeline review items: about 10 batches...
TARGET_MIN = 500  # ...and never fewer than this
_WRITE_BATCH = 1000

SENTENCE = (
    "The label-issue detector doubts {whose} {given}: out of fold the model gives it "
    "{given_p} and suggests {suggested} ({suggested_p})."
)
SENTENCE_BLIND = (
    "The label-issue detector doubts {whose}: out of fold the model finds it unlikely and "
    "suggests another class."
)
GIVEN = "the given label"
ANALYSTS = "the analysts' label"  # an analyst's label overrode the given one in detection


def review_target(project: Project) -> int:
    return max(TARGET_FACTOR * project.batch_size, TARGET_MIN)


@dataclass(frozen=True)
class Candidate:
    """A prune-set case that may get a review item, with what its item states."""

    case_id: int
    label_id: int  # the label the detector checked (the given one, or the analysts')
    given_id: int | None  # the case's given label
    suggested_id: int | None
    suggested_p: float | None
    score: float
    priority: float
    group: tuple[int, ...] = ()


def review_items_refresh(
    *,
    project: Project,
    job: Job | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Refresh the pipeline's review items from the latest detection; write the noise estimate.

    Open `label_issue` items whose case is among the best `review_target` candidates get fresh
    facts and priority; the others are cancelled; the best candidates without a live review
    item get a new one. Claimed items and second-opinion items are left alone (their cases are
    not candidates while they live).
    """
    measured = noise_estimates_write(project=project, job=job)
    candidates = _candidates(project)
    live = list(
        QueueItem.objects.filter(
            project=project,
            kind=QueueKind.REVIEW,
            status__in=[QueueStatus.OPEN, QueueStatus.CLAIMED],
        ).values_list("pk", "case_id", "status", "reason__strategy")
    )
    ours = {case_id: pk for pk, case_id, status, strategy in live if _is_ours(status, strategy)}
    covered = {case_id for _, case_id, _, _ in live} - set(ours)
    target = review_target(project)
    chosen = [c for c in candidates if c.case_id not in covered][:target]
    if progress:
        progress(0.3, f"{len(chosen)} of {len(candidates)} flagged cases for review")
    chosen = _drop_settled_members(chosen)
    chosen_ids = {c.case_id for c in chosen}
    similar = _similar(project, [c.case_id for c in chosen])
    names = class_names(project_classes(project=project))
    refreshed: list[QueueItem] = []
    entries: list[QueueEntry] = []
    for candidate in chosen:
        reason = pick_reason(candidate, names=names)
        facts = _facts(candidate)
        near = similar.get(candidate.case_id, [])
        if candidate.case_id in ours:
            item = QueueItem(
                pk=ours[candidate.case_id],
                priority=candidate.priority,
                reason=reason.to_json(),
                model_version_id=None,
                similar_cases=near,
                group=list(candidate.group),
                **item_facts(facts),
            )
            refreshed.append(item)
        else:
            entries.append(
                QueueEntry(
                    candidate.case_id,
                    candidate.priority,
                    reason,
                    None,
                    near,
                    facts,
                    QueueKind.REVIEW,
                    candidate.group,
                )
            )
    stale_cases = [case_id for case_id in ours if case_id not in chosen_ids]
    stale = [ours[case_id] for case_id in stale_cases]
    with transaction.atomic():
        # Case locks before the project's, as a label takes them (no deadlock with a second
        # opinion being made on one of these cases).
        cases_lock(project=project, case_ids=[*stale_cases, *chosen_ids])
        Project.objects.select_for_update().filter(pk=project.pk).values_list("pk").first()
        now = timezone.now()
        # Only items still open: one a reviewer claimed meanwhile is theirs now.
        still_open = QueueItem.objects.filter(status=QueueStatus.OPEN)
        cancelled = 0
        for start in range(0, len(stale), _WRITE_BATCH):
            cancelled += still_open.filter(pk__in=stale[start : start + _WRITE_BATCH]).update(
                status=QueueStatus.CANCELLED, updated_at=now
            )
        for item in refreshed:
            item.updated_at = now
        updated = still_open.bulk_update(
            refreshed,
            [
                "priority",
                "reason",
                "model_version_id",
                "similar_cases",
                "group",
                *item_facts(None),
                "updated_at",
            ],
            batch_size=_WRITE_BATCH,
        )
        created = len(queue_items_create(project=project, entries=entries))
    return {
        "candidates": len(candidates),
        "created": created,
        "refreshed": updated,
        "cancelled": cancelled,
        "target": target,
        "noise_estimates": measured,
    }


def _is_ours(status: str, strategy: Any) -> bool:
    """An open item the pipeline made: the only review items a refresh may change."""
    return status == QueueStatus.OPEN and strategy == STRATEGY


def _candidates(project: Project) -> list[Candidate]:
    """Prune-set pool cases not decided by review or adjudication and not excluded, best first.

    One query; the priority is computed per row from the classes' tiers (a handful of values),
    so 200,000 flagged cases take about a second.
    """
    settled = ResolvedLabel.objects.filter(case_id=OuterRef("case_id")).filter(
        Q(source__in=AUTHORITATIVE_SOURCES) | Q(excluded=True)
    )
    rows = (
        LabelIssue.objects.filter(project=project, in_prune_set=True, case__split=Split.POOL)
        .exclude(Exists(settled))
        .order_by()
        .values_list(
            "case_id",
            "given_label_id",
            "case__given_label_id",
            "suggested_label_id",
            "suggested_p",
            "score",
            "group",
        )
    )
    tiers = {c.pk: str(c.tier) for c in project_classes(project=project)}
    out = [
        Candidate(
            case_id=case_id,
            label_id=label_id,
            given_id=given_id,
            suggested_id=suggested_id,
            suggested_p=suggested_p,
            score=float(score),
            priority=review_priority(
                error_p=detector_error_p(score=float(score), suggested_p=suggested_p),
                given_tier=tiers.get(label_id),
                suggested_tier=tiers.get(suggested_id) if suggested_id is not None else None,
            ),
            group=tuple(int(c) for c in group or () if isinstance(c, int) and c != case_id),
        )
        for case_id, label_id, given_id, suggested_id, suggested_p, score, group in rows.iterator(
            chunk_size=20_000
        )
    ]
    out.sort(key=lambda c: (-c.priority, -c.score, c.case_id))
    return out


def _settled(case_ids: set[int]) -> set[int]:
    """Those of `case_ids` a decision resolved or excluded (never offered for review again)."""
    ids = sorted(case_ids)
    out: set[int] = set()
    for start in range(0, len(ids), 5000):
        out.update(
            ResolvedLabel.objects.filter(case_id__in=ids[start : start + 5000])
            .filter(Q(source__in=AUTHORITATIVE_SOURCES) | Q(excluded=True))
            .values_list("case_id", flat=True)
        )
    return out


def _drop_settled_members(chosen: list[Candidate]) -> list[Candidate]:
    """The candidates with group members decided since the detection left out of their group."""
    settled = _settled({m for c in chosen for m in c.group})
    if not settled:
        return chosen
    return [
        replace(c, group=tuple(m for m in c.group if m not in settled)) if c.group else c
        for c in chosen
    ]


def _probability(p: float) -> str:
    """Two decimals, but never a flat 0.00 or 1.00 for a probability that is neither."""
    if 0.0 < p < 0.005:
        return "under 0.01"
    if 0.995 <= p < 1.0:
        return "over 0.99"
    return f"{p:.2f}"


def pick_reason(candidate: Candidate, *, names: dict[int, str]) -> PickReason:
    """Why the case is up for review, in words (with and without class names and numbers)."""
    whose = GIVEN if candidate.label_id == candidate.given_id else ANALYSTS
    given_p = 1.0 - candidate.score
    suggested_p = candidate.suggested_p if candidate.suggested_p is not None else 0.0
    suggested_id = candidate.suggested_id
    return PickReason(
        strategy=STRATEGY,
        sentence=SENTENCE.format(
            whose=whose,
            given=names.get(candidate.label_id, f"#{candidate.label_id}"),
            given_p=_probability(given_p),
            suggested=names.get(suggested_id, f"#{suggested_id}") if suggested_id else "?",
            suggested_p=_probability(suggested_p),
        ),
        sentence_blind=SENTENCE_BLIND.format(whose=whose),
        score=round(candidate.score, 4),
        class_ids=(suggested_id, candidate.label_id) if suggested_id else (candidate.label_id,),
        probas=(round(suggested_p, 4), round(given_p, 4)) if suggested_id else (round(given_p, 4),),
        details={"priority": candidate.priority, "group_size": len(candidate.group)},
    )


def _facts(candidate: Candidate) -> ModelFacts:
    """The detector's suggestion as the item's model facts (no model version: out of fold)."""
    p = candidate.suggested_p
    return ModelFacts(
        model_version_id=None,
        suggestion_id=candidate.suggested_id,
        suggestion_p=None if p is None else round(float(p), 4),
    )


def _similar(project: Project, case_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The SIMILAR most similar labelled cases of each case, as pool items carry them."""
    if not case_ids:
        return {}
    hashes = dict(Case.objects.filter(pk__in=case_ids).values_list("pk", "content_hash"))
    matrix = matrix_load()
    ids = np.array([c for c in case_ids if c in hashes], dtype=np.int64)
    rows = matrix.rows_for(hashes[int(c)] for c in ids)
    ids = ids[rows >= 0]
    if ids.size == 0:
        return {}
    X = np.asarray(matrix.vectors[rows[rows >= 0]])
    found = similar_labelled(project=project, X_query=X, exclude_case_ids=ids)
    return dict(zip(ids.tolist(), found, strict=True))


def noise_estimates_write(*, project: Project, job: Job | None = None) -> int:
    """Store this retrain's measured noise of the given labels: per given-label source and
    class, the reviewed, wrong and excluded counts of the cases a decision resolved. Returns
    the rows written (none before any review)."""
    counts = (
        ResolvedLabel.objects.filter(
            case__project=project,
            case__given_label__isnull=False,
            source__in=AUTHORITATIVE_SOURCES,
        )
        .values("case__given_label_source", "case__given_label_id")
        .annotate(
            reviewed=Count("pk"),
            wrong=Count(
                "pk",
                filter=Q(label__isnull=False) & ~Q(label_id=F("case__given_label_id")),
            ),
            excluded=Count("pk", filter=Q(excluded=True)),
        )
        .order_by("case__given_label_source", "case__given_label_id")
    )
    now = timezone.now()
    rows = [
        LabelNoiseEstimate(
            project=project,
            job=job,
            label_source=row["case__given_label_source"],
            given_label_id=row["case__given_label_id"],
            reviewed=row["reviewed"],
            wrong=row["wrong"],
            excluded=row["excluded"],
            measured_at=now,
        )
        for row in counts
    ]
    with transaction.atomic():
        if job is not None:  # a re-run of the same retrain replaces its rows
            LabelNoiseEstimate.objects.filter(job=job).delete()
        LabelNoiseEstimate.objects.bulk_create(rows)
    return len(rows)
