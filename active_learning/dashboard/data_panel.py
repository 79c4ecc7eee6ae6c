"""The dashboard's data quality panel: how noisy the given labels are, and what review did.

Estimated noise per class, from what is stored today: the label-issue detector's prune set
(share of a class's given labels confident learning flags), then the reviewers' measured error
rate (`LabelNoiseEstimate`, latest run). Issues open / reviewed / confirmed real; resolved
labels by source; excluded cases. Counts over every case of a project take one pass each (~0.7 s
at a million cases), so `counts_compute` runs in the background (`services.dashboard`) and the
page reads the stored snapshot, saying when it was counted; the reviewers' noise is read live
(a few rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, Sum

from active_learning.models import DashboardSnapshot, LabelIssue, LabelNoiseEstimate
from labeling.models import Case, Project, ResolvedLabel
from labeling.services.resolution import AUTHORITATIVE_SOURCES


@dataclass(frozen=True)
class ClassNoise:
    name: str
    tier: str
    given: int
    flagged: int
    reviewed: int
    wrong: int

    @property
    def detected_share(self) -> float | None:
        return self.flagged / self.given if self.given else None

    @property
    def reviewed_share(self) -> float | None:
        return self.wrong / self.reviewed if self.reviewed else None


@dataclass
class DataPanel:
    counted_at: datetime | None  # None: never counted yet (a worker has been asked to)
    classes: list[ClassNoise] = field(default_factory=list)
    issues_open: int = 0
    issues_reviewed: int = 0
    issues_real: int = 0
    by_source: list[tuple[str, int]] = field(default_factory=list)
    excluded: int = 0
    cases: int = 0
    noise_measured_at: datetime | None = None


def _keyed(rows: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in rows}


def counts_compute(*, project: Project) -> dict[str, Any]:
    """The data quality counts over every case of `project`, JSON-able (one pass each)."""
    given = _keyed(
        Case.objects.filter(project=project, given_label__isnull=False)
        .order_by()
        .values_list("given_label_id")
        .annotate(n=Count("id"))
        .values_list("given_label_id", "n")
    )
    flagged = _keyed(
        LabelIssue.objects.filter(project=project, in_prune_set=True)
        .order_by()
        .values_list("given_label_id")
        .annotate(n=Count("id"))
        .values_list("given_label_id", "n")
    )
    resolved = ResolvedLabel.objects.filter(case__project=project)
    by_source = dict(
        resolved.order_by().values_list("source").annotate(n=Count("id")).values_list("source", "n")
    )
    # Issues: few cases are settled (decided by a reviewer or adjudicator, or excluded), so
    # read those with their issue rather than test every issue for a decision.
    settled = resolved.filter(Q(source__in=AUTHORITATIVE_SOURCES) | Q(excluded=True)).values_list(
        "source", "excluded", "label_id", "case__given_label_id", "case__label_issue__in_prune_set"
    )
    issues = {"open": 0, "reviewed": 0, "real": 0}
    settled_flagged = 0
    for source, excluded, label_id, given_id, in_prune in settled.order_by().iterator():
        settled_flagged += in_prune is True
        if in_prune is None or source not in AUTHORITATIVE_SOURCES:
            continue
        issues["reviewed"] += 1
        issues["real"] += bool(excluded or label_id != given_id)
    prune = LabelIssue.objects.filter(project=project, in_prune_set=True).count()
    issues["open"] = prune - settled_flagged
    return {
        "given": given,
        "flagged": flagged,
        "by_source": by_source,
        "issues": issues,
        "excluded": resolved.filter(excluded=True).count(),
        "cases": Case.objects.filter(project=project).count(),
    }


def data_panel(
    *,
    project: Project,
    classes: dict[int, tuple[str, str]],
    snapshot: DashboardSnapshot | None,
) -> DataPanel:
    """The panel from the stored snapshot's counts (empty, `counted_at` None, without one)."""
    counts = snapshot.counts if snapshot is not None else None
    if counts is None:
        counts = {"given": {}, "flagged": {}, "by_source": {}, "issues": {}, "excluded": 0,
                  "cases": 0}  # fmt: skip
    latest = (
        LabelNoiseEstimate.objects.filter(project=project)
        .order_by("-measured_at")
        .values_list("measured_at", flat=True)
        .first()
    )
    reviewed: dict[int, tuple[int, int]] = {}
    if latest is not None:
        for label_id, n, wrong in (
            LabelNoiseEstimate.objects.filter(project=project, measured_at=latest)
            .order_by()
            .values_list("given_label_id")
            .annotate(n=Sum("reviewed"), w=Sum("wrong"))
            .values_list("given_label_id", "n", "w")
        ):
            reviewed[label_id] = (int(n or 0), int(wrong or 0))
    rows = [
        ClassNoise(
            name=name,
            tier=tier,
            given=int(counts["given"].get(str(pk), 0)),
            flagged=int(counts["flagged"].get(str(pk), 0)),
            reviewed=reviewed.get(pk, (0, 0))[0],
            wrong=reviewed.get(pk, (0, 0))[1],
        )
        for pk, (name, tier) in classes.items()
    ]
    rows.sort(key=lambda r: (-(r.detected_share or 0.0), r.name.casefold()))
    issues = counts["issues"]
    return DataPanel(
        counted_at=snapshot.counted_at if snapshot is not None else None,
        classes=rows,
        issues_open=int(issues.get("open") or 0),
        issues_reviewed=int(issues.get("reviewed") or 0),
        issues_real=int(issues.get("real") or 0),
        by_source=sorted(counts["by_source"].items(), key=lambda kv: -kv[1]),
        excluded=int(counts["excluded"]),
        cases=int(counts["cases"]),
        noise_measured_at=latest,
    )
