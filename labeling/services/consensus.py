"""Storing a consensus step's results: per case, per annotator, agreement, and resolutions.

The pipeline computes Dawid-Skene over analysts' labels (each given-label source one more
annotator) and hands the results here. Cases with two or more current analyst labels resolve to
the consensus (`source=consensus`, `confidence` = its posterior), below review and adjudication;
a case whose analyst labels changed since the step read them is left to its majority vote until
the next step (a label is never overwritten by a consensus that did not see it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Max, QuerySet
from django.utils import timezone

from labeling.models import (
    AgreementReport,
    Annotation,
    AnnotationSource,
    AnnotatorReliability,
    Case,
    CaseConsensus,
    Project,
    ResolutionSource,
    ResolvedLabel,
)
from labeling.services.resolution import RANK, resolution_state
from workbench.core.models import AuditEvent, Job

CHUNK = 1000
MIN_ANALYST_LABELS = 2  # the resolution uses consensus from this many current analyst labels


@dataclass(frozen=True)
class CaseResult:
    """Dawid-Skene's answer for one case, and the analyst labels it saw (count, last id)."""

    case_id: int
    label_id: int
    posterior: float
    given_disagrees: bool
    analyst_labels: int
    last_annotation_id: int
    agreement: float  # share of the analyst labels that are the consensus label


@dataclass(frozen=True)
class Reliability:
    """One annotator's estimate: an analyst (`annotator_id`) or a given-label source."""

    accuracy: float
    confusion: dict[str, Any]
    labels: int
    annotator_id: int | None = None
    label_source: str = ""
    gold_labels: int = 0
    gold_correct: int = 0


def _current_analyst_labels() -> QuerySet[Annotation]:
    """The analyst labels the consensus counts: queue annotations, not superseded, not skipped,
    with a label, on the case's current text. The step reads them and the write checks them
    with this one definition, so the two always agree."""
    return Annotation.objects.filter(
        source=AnnotationSource.QUEUE,
        superseded_at__isnull=True,
        skipped=False,
        label__isnull=False,
        content_hash=F("case__content_hash"),
    )


def analyst_labels_current(*, project: Project) -> list[tuple[int, int, int, int]]:
    """(case id, annotator id, label id, annotation id) of every current analyst label of the
    project (`_current_analyst_labels`)."""
    return list(
        _current_analyst_labels()
        .filter(case__project=project)
        .order_by()
        .values_list("case_id", "annotator_id", "label_id", "id")
    )


@transaction.atomic
def consensus_store(
    *,
    project: Project,
    job: Job | None,
    cases: Sequence[CaseResult],
    reliabilities: Sequence[Reliability],
    agreement: dict[str, Any] | None,
    now: datetime | None = None,
) -> None:
    """Replace the project's per-case consensus; add this step's reliabilities and agreement."""
    now = now or timezone.now()
    CaseConsensus.objects.filter(project=project).delete()
    CaseConsensus.objects.bulk_create(
        (
            CaseConsensus(
                project=project,
                case_id=c.case_id,
                label_id=c.label_id,
                posterior=min(1.0, max(0.0, c.posterior)),
                given_disagrees=c.given_disagrees,
                analyst_labels=min(c.analyst_labels, 32767),
                job=job,
                computed_at=now,
            )
            for c in cases
        ),
        batch_size=2000,
    )
    if job is not None:  # a re-run of the same retrain replaces its rows
        AnnotatorReliability.objects.filter(job=job).delete()
        AgreementReport.objects.filter(job=job).delete()
    AnnotatorReliability.objects.bulk_create(
        AnnotatorReliability(
            project=project,
            job=job,
            annotator_id=r.annotator_id,
            label_source="" if r.annotator_id is not None else r.label_source,
            accuracy=min(1.0, max(0.0, r.accuracy)),
            confusion=r.confusion,
            labels=r.labels,
            gold_labels=r.gold_labels,
            gold_correct=r.gold_correct,
            measured_at=now,
        )
        for r in reliabilities
    )
    if agreement is not None:
        AgreementReport.objects.create(project=project, job=job, measured_at=now, **agreement)


def consensus_resolutions_apply(*, project: Project, cases: Sequence[CaseResult]) -> int:
    """Resolve cases with two or more current analyst labels to their consensus; returns the
    resolutions changed. Decided cases (review, adjudicated) are left alone, and so is a case
    whose current analyst labels are not the ones the step saw (a label came in meanwhile)."""
    wanted = [c for c in cases if c.analyst_labels >= MIN_ANALYST_LABELS]
    changed = 0
    for start in range(0, len(wanted), CHUNK):
        changed += _apply_chunk(project, wanted[start : start + CHUNK])
    return changed


@transaction.atomic
def _apply_chunk(project: Project, chunk: Sequence[CaseResult]) -> int:
    by_case = {c.case_id: c for c in chunk}
    # The label path locks a case before writing its annotations or resolution: so do we, in id
    # order, so that what we check below cannot change before we write.
    # skip_locked: a case being labelled or undone right now is left to the next step (its
    # labels are changing anyway), and we never wait on, or deadlock with, a label's locks.
    locked = list(
        Case.objects.select_for_update(skip_locked=True)
        .filter(project=project, pk__in=by_case)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    seen = {
        row["case_id"]: (row["n"], row["last"])
        # Counted as the step counts them (one vote per analyst).
        for row in _current_analyst_labels()
        .filter(case_id__in=locked)
        .values("case_id")
        .annotate(n=Count("annotator_id", distinct=True), last=Max("id"))
        .order_by()
    }
    # Every case with analyst labels has a resolution already (each label writes one).
    resolved = {r.case_id: r for r in ResolvedLabel.objects.filter(case_id__in=locked)}
    now = timezone.now()
    updates: list[ResolvedLabel] = []
    events: list[AuditEvent] = []
    for case_id in locked:
        result, row = by_case[case_id], resolved.get(case_id)
        if row is None or seen.get(case_id) != (result.analyst_labels, result.last_annotation_id):
            continue
        if RANK.get(row.source, 0) > RANK[ResolutionSource.CONSENSUS]:
            continue
        before = resolution_state(row)
        row.label_id = result.label_id
        row.source = ResolutionSource.CONSENSUS
        row.confidence = round(float(result.posterior), 6)
        row.agreement = result.agreement
        row.excluded = False
        after = resolution_state(row)
        if after == before:
            continue
        row.updated_at = now
        updates.append(row)
        events.append(
            AuditEvent(
                project=project,
                action="resolution.change",
                object_type=ResolvedLabel._meta.label_lower,
                object_id=str(row.pk),
                before=before,
                after=after,
            )
        )
    ResolvedLabel.objects.bulk_update(
        updates, ["label", "source", "confidence", "agreement", "excluded", "updated_at"]
    )
    Case.objects.filter(pk__in=[r.case_id for r in updates]).update(changed_at=now)
    AuditEvent.objects.bulk_create(events)
    return len(updates)
