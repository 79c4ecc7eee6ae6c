"""Read queries of the labeling app."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, F, IntegerField, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from labeling import statements as st
from labeling.models import (
    Annotation,
    AnnotationSource,
    Case,
    Project,
    QueueAction,
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolvedLabel,
    Split,
)
from labeling.services.resolution import AUTHORITATIVE_SOURCES
from workbench.core import sql
from workbench.core.jobs import PENDING
from workbench.core.models import Job, JobKind, JobStatus

PACE_MIN_SPAN = 60.0  # seconds: the shortest span a pace is measured over


def queue_items_held(*, project: Project, analyst: Any) -> list[QueueItem]:
    """The analyst's claimed items in the order the page shows them (undone first, then oldest)."""
    return list(
        QueueItem.objects.select_related("case")
        .filter(project=project, assigned_to=analyst, status=QueueStatus.CLAIMED)
        .order_by(F("front_at").desc(nulls_last=True), "claimed_at", "id")
    )


# What an answer reads of its item: a review decision needs the kind, suggestion and group too.
_TICKET_ITEM_FIELDS = (
    "id",
    "project_id",
    "case_id",
    "status",
    "assigned_to_id",
    "kind",
    "suggestion_id",
    "group",
)


def queue_item_of(*, project: Project, item_id: int) -> QueueItem | None:
    """The project's item a card's ticket names, with what an answer reads of it (plain SQL:
    every answer of the queue page runs this)."""
    row = sql.fetch_one(st.ticket_item(_TICKET_ITEM_FIELDS), [item_id, project.pk])
    return sql.load(QueueItem, _TICKET_ITEM_FIELDS, row) if row else None


def queue_open_count(*, project: Project) -> int:
    """Open items of the project (served by the `queueitem_open_claim` partial index)."""
    return QueueItem.objects.filter(project=project, status=QueueStatus.OPEN).count()


def queue_undo_stack(*, project: Project, analyst: Any) -> list[QueueAction]:
    """The analyst's undoable actions, newest first (the page's undo shows the first)."""
    from labeling.services.annotations import UNDO_DEPTH

    recent = (
        QueueAction.objects.select_related("annotation", "annotation__case", "annotation__label")
        .filter(project=project, analyst=analyst)
        .order_by("-id")[:UNDO_DEPTH]
    )
    return [a for a in recent if a.undone_at is None]


def project_progress(*, project: Project) -> dict[str, Any]:
    """One project's headline figures for the project list (each a small indexed query)."""
    from labeling.hooks import model_side
    from labeling.models import ResolutionSource, ResolvedLabel, Split

    analyst_sources = [
        ResolutionSource.ANNOTATION,
        ResolutionSource.CONSENSUS,
        ResolutionSource.REVIEW,
        ResolutionSource.ADJUDICATED,
    ]
    labeled = (
        Annotation.objects.filter(case__project=project, superseded_at__isnull=True, skipped=False)
        .values("case_id")
        .distinct()
        .count()
    )
    in_queue = QueueItem.objects.filter(
        project=project, status__in=[QueueStatus.OPEN, QueueStatus.CLAIMED]
    ).count()
    eval_labels = ResolvedLabel.objects.filter(
        case__project=project,
        case__split=Split.EVAL,
        source__in=analyst_sources,
        label__isnull=False,
    ).count()
    champion = model_side().champion(project=project)
    last = (
        Job.objects.filter(project=project, kind=JobKind.RETRAIN, status=JobStatus.SUCCEEDED)
        .order_by("-finished_at")
        .first()
    )
    shown = retrain_job_latest(project=project)
    running = shown if shown is not None and shown.status in PENDING else None
    return {
        "project": project,
        "cases": Case.objects.filter(project=project).count(),
        "labeled": labeled,
        "in_queue": in_queue,
        "eval_labels": eval_labels,
        "champion": champion,
        "macro_f1": champion.macro_f1 if champion else None,
        "decision": model_side().last_decision(project=project),
        "last_retrain": last.finished_at if last else None,
        "running_job": running,
        "retrain_job": shown,
    }


MODEL_JOBS = (JobKind.RETRAIN, JobKind.EMBED)


def retrain_job_latest(*, project: Project) -> Job | None:
    """The job the project list's model column follows: a running embedding job (an import's
    texts) or retrain, else the newest of them, so a failed one shows on page load."""
    jobs = Job.objects.filter(project=project, kind__in=MODEL_JOBS)
    # "running" sorts after "queued": a running job first, then the oldest queued one.
    running = jobs.filter(status__in=PENDING).order_by("-status", "created_at").first()
    return running or jobs.order_by("-created_at").first()


def projects_with_roles(*, user: Any) -> list[tuple[Project, str]]:
    """The projects the user may open with their role there (staff: every project, as admin)."""
    from labeling.models import ProjectMembership, ProjectRole

    if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
        return [(p, str(ProjectRole.ADMIN)) for p in Project.objects.order_by("name")]
    from labeling.permissions import RANK, group_role

    grouped = group_role(user=user)
    rows = ProjectMembership.objects.filter(user_id=user.pk).select_related("project")
    roles = [(m.project, max(str(m.role), grouped, key=lambda r: RANK.get(r, 0))) for m in rows]
    return sorted(roles, key=lambda r: r[0].name)


# Resolutions by a decision: the cases gold items serve back, and what their answers are
# measured against.
GOLD_SOURCES = AUTHORITATIVE_SOURCES


def gold_case_ids(*, project: Project, limit: int) -> list[int]:
    """Up to `limit` cases to serve as gold items: pool-split cases (never evaluation ones, so
    gold never counts in model evaluation) decided by a review or adjudication with a label, not
    excluded, and with no open or claimed item of any kind (nobody is deciding or labelling them
    now). Those answered as gold fewest times come first, then in content-hash order (fixed,
    pseudo-random, cheap)."""
    if limit <= 0:
        return []
    live = QueueItem.objects.filter(
        case=OuterRef("case"), status__in=[QueueStatus.OPEN, QueueStatus.CLAIMED]
    )
    answered = (
        QueueItem.objects.filter(
            case=OuterRef("case"), kind=QueueKind.GOLD, status=QueueStatus.DONE
        )
        .order_by()
        .values("case")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return list(
        ResolvedLabel.objects.filter(
            case__project=project,
            case__split=Split.POOL,
            source__in=GOLD_SOURCES,
            excluded=False,
            label__isnull=False,
        )
        .exclude(Exists(live))
        .annotate(served=Coalesce(Subquery(answered, output_field=IntegerField()), Value(0)))
        .order_by("served", "case__content_hash", "case_id")
        .values_list("case_id", flat=True)[:limit]
    )


def gold_results(*, project: Project) -> dict[int, tuple[int, int]]:
    """user id -> (answered, correct): each analyst's current labels on gold items against the
    case's current decided label (review or adjudication, not excluded).

    Counted: current (not superseded), labelled answers on the text the case has now; skips and
    flags without a label are not answers; a case no longer decided counts for nobody.
    """
    decided = Q(
        case__resolved__source__in=GOLD_SOURCES,
        case__resolved__excluded=False,
        case__resolved__label__isnull=False,
    )
    rows = (
        Annotation.objects.filter(
            decided,
            queue_item__project=project,
            queue_item__kind=QueueKind.GOLD,
            source=AnnotationSource.QUEUE,
            superseded_at__isnull=True,
            skipped=False,
            label__isnull=False,
            content_hash=F("case__content_hash"),
        )
        .order_by()
        .values("annotator_id")
        .annotate(
            answered=Count("pk"),
            correct=Count("pk", filter=Q(label_id=F("case__resolved__label_id"))),
        )
    )
    return {int(r["annotator_id"]): (int(r["answered"]), int(r["correct"])) for r in rows}


def queue_pace(*, project: Project, since: datetime, now: datetime) -> float:
    """Queue answers (labels and skips: both use up an item) per second since `since`.

    Counted from the annotations' timestamps over the span from the first answer in the window
    to `now`, at least PACE_MIN_SPAN: a team that started two minutes ago is measured over
    those two minutes, not the whole window, and a lone burst does not read as a flood.
    """
    row = Annotation.objects.filter(
        case__project=project, source=AnnotationSource.QUEUE, created_at__gte=since
    ).aggregate(n=Count("id"), first=Min("created_at"))
    if not row["n"] or row["first"] is None:
        return 0.0
    span = max((now - row["first"]).total_seconds(), PACE_MIN_SPAN)
    return float(row["n"]) / span


def retrain_seconds_last(*, project: Project) -> float | None:
    """How long the project's last successful retrain took from being asked for to done
    (waiting for a worker included: that is how long fresh picks take); None before any."""
    row = (
        Job.objects.filter(
            project=project,
            kind=JobKind.RETRAIN,
            status=JobStatus.SUCCEEDED,
            finished_at__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("created_at", "finished_at")
        .first()
    )
    if row is None or row[1] is None:
        return None
    return max((row[1] - row[0]).total_seconds(), 0.0)
