"""Stored consensus runs for the label quality page's tests: the rows a consensus step writes
(`AgreementReport`, `AnnotatorReliability`, `CaseConsensus`), made directly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from labeling.models import (
    AgreementReport,
    AnnotatorReliability,
    CaseConsensus,
    LabelClass,
    Project,
)
from tests.factories import AnalystFactory, CaseFactory
from workbench.core.models import Job, JobStatus

# Rows true class, columns said: the analyst mostly says B when it is A (the common class).
MATRIX_A_TO_B = [[0.9, 0.1, 0.0], [0.3, 0.7, 0.0], [0.0, 0.5, 0.5]]


@dataclass
class Run:
    project: Project
    classes: list[LabelClass]
    job: Job
    analysts: list[Any] = field(default_factory=list)
    measured_at: datetime | None = None


def confusion(classes: list[LabelClass], matrix: list[list[float]]) -> dict[str, Any]:
    return {"classes": [c.pk for c in classes], "matrix": matrix}


def consensus_cases(
    project: Project, labels: list[tuple[LabelClass, int]], *, disagree: int = 0, below: int = 0
) -> None:
    """`n` cases with consensus `label` for each (label, n); the first `disagree` of all disagree
    with their given label, the first `below` have a posterior of 0.5 and three analyst labels."""
    rows, i = [], 0
    now = timezone.now()
    for label, n in labels:
        for _ in range(n):
            rows.append(
                CaseConsensus(
                    project=project,
                    case=CaseFactory(project=project),
                    label=label,
                    posterior=0.5 if i < below else 0.97,
                    given_disagrees=i < disagree,
                    analyst_labels=3 if i < below else 1,
                    computed_at=now,
                )
            )
            i += 1
    CaseConsensus.objects.bulk_create(rows)


def store_run(
    project: Project,
    classes: list[LabelClass],
    *,
    analysts: list[tuple[Any, float, list[list[float]], int, int, int]],
    sources: Sequence[tuple[str, float, list[list[float]], int]] = (),
    alpha: tuple[float | None, float | None, float | None, int] | None = (0.42, 0.39, 0.44, 1415),
    class_pairs: list[dict[str, Any]] | None = None,
    analyst_pairs: list[dict[str, Any]] | None = None,
    measured_at: datetime | None = None,
) -> Run:
    """One consensus run: analysts as (user, accuracy, matrix, labels, gold answered, gold
    correct), sources as (name, accuracy, matrix, labels)."""
    measured_at = measured_at or timezone.now()
    job = Job.objects.create(kind="retrain", project=project, status=JobStatus.SUCCEEDED)
    for user, accuracy, matrix, labels, gold, correct in analysts:
        AnnotatorReliability.objects.create(
            project=project,
            job=job,
            annotator=user,
            accuracy=accuracy,
            confusion=confusion(classes, matrix),
            labels=labels,
            gold_labels=gold,
            gold_correct=correct,
            measured_at=measured_at,
        )
    for name, accuracy, matrix, labels in sources:
        AnnotatorReliability.objects.create(
            project=project,
            job=job,
            label_source=name,
            accuracy=accuracy,
            confusion=confusion(classes, matrix),
            labels=labels,
            measured_at=measured_at,
        )
    if alpha is not None:
        value, low, high, n = alpha
        AgreementReport.objects.create(
            project=project,
            job=job,
            alpha=value,
            alpha_low=low,
            alpha_high=high,
            cases=n,
            class_pairs=class_pairs or [],
            analyst_pairs=analyst_pairs or [],
            measured_at=measured_at,
        )
    return Run(project, classes, job, [a[0] for a in analysts], measured_at)


def earlier(minutes: int = 60) -> datetime:
    return timezone.now() - timedelta(minutes=minutes)


def analysts(n: int, **fields: Any) -> list[Any]:
    return [AnalystFactory(**fields) for _ in range(n)]
