"""The dashboard's snapshot: its expensive figures, computed off the request path and stored.

`dashboard_snapshot_refresh` counts the data quality figures over every case, computes the
champion's reliability bins and confusions on the evaluation labels, the recent champions'
stop-set predictions for the stopping signal and the people panel's window (~1.2 s at a million
cases); it runs as the retrain chain's last
step and as a Celery task. Pages only read the snapshot: `dashboard_snapshot_request` (a page
found it missing, stale or about another champion) sends the task after commit, at most once
per REQUEST_RESEND_SECONDS; the minute tick resends requests no worker answered
(`dashboard_snapshots_resend`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from active_learning.dashboard import model_panel, people_panel
from active_learning.dashboard.data_panel import counts_compute
from active_learning.models import DashboardSnapshot, ModelStatus, ModelVersion
from labeling.models import Project

log = logging.getLogger(__name__)

REFRESH_SECONDS = 300  # a page asks for a new snapshot once the stored one is this old
REQUEST_RESEND_SECONDS = 120  # an unanswered request is sent again after this long


def snapshot_due(
    *, snapshot: DashboardSnapshot | None, champion_pk: int | None, now: Any = None
) -> bool:
    """Whether `snapshot` should be recomputed: missing, never counted, about another champion,
    or older than REFRESH_SECONDS."""
    now = now or timezone.now()
    if snapshot is None or snapshot.counted_at is None:
        return True
    if snapshot.champion_id != champion_pk:
        return True
    return bool(now - snapshot.counted_at > timedelta(seconds=REFRESH_SECONDS))


def _champion_pk(project: Project) -> int | None:
    return (
        ModelVersion.objects.filter(project=project, status=ModelStatus.CHAMPION)
        .values_list("pk", flat=True)
        .first()
    )


def dashboard_snapshot_refresh(*, project: Project, force: bool = False) -> dict[str, Any]:
    """Compute and store the project's snapshot when due (always with `force`).

    Idempotent: a duplicate task finds it not due and returns. Two runs at once are harmless: a
    run stores its figures only if none newer than its start were stored meanwhile.
    """
    started = timezone.now()
    champion_pk = _champion_pk(project)
    snapshot = DashboardSnapshot.objects.filter(project=project).first()
    pending = (
        snapshot is not None
        and snapshot.requested_at is not None
        and (snapshot.counted_at is None or snapshot.requested_at > snapshot.counted_at)
    )
    if not (force or pending or snapshot_due(snapshot=snapshot, champion_pk=champion_pk)):
        return {"skipped": "not due"}
    counts = counts_compute(project=project)
    evaluation = None
    if champion_pk is not None:
        evaluation = model_panel.champion_evaluation_compute(
            project=project, champion_pk=champion_pk, classes=model_panel.class_map(project=project)
        )
    fields = {
        "counted_at": started,
        "counts": counts,
        "champion_id": champion_pk,
        "evaluation": evaluation,
        "stop_set": model_panel.stop_set_patterns(project=project),
        "people": people_panel.window_compute(project=project),
    }
    with transaction.atomic():
        DashboardSnapshot.objects.get_or_create(project=project)
        stored = DashboardSnapshot.objects.filter(
            Q(counted_at__isnull=True) | Q(counted_at__lt=started), project=project
        ).update(**fields)
    return {"stored": bool(stored), "counted_at": started.isoformat(), "champion": champion_pk}


def _send(project_ids: list[int]) -> None:
    from active_learning.tasks import dashboard_snapshot_refresh as task

    def send() -> None:
        for pk in project_ids:
            try:
                task.delay(pk)
            except Exception:  # broker down: the minute tick resends the request
                log.warning("could not enqueue the dashboard snapshot of project %s", pk)

    transaction.on_commit(send)


def dashboard_snapshot_request(*, project: Project) -> bool:
    """Ask a worker for a new snapshot (a page found none usable); True when a task was sent,
    False when one was asked for less than REQUEST_RESEND_SECONDS ago."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=REQUEST_RESEND_SECONDS)
    with transaction.atomic():
        DashboardSnapshot.objects.get_or_create(project=project)
        claimed = DashboardSnapshot.objects.filter(
            Q(requested_at__isnull=True) | Q(requested_at__lt=cutoff), project=project
        ).update(requested_at=now)
        if claimed:
            _send([project.pk])
    return bool(claimed)


def dashboard_snapshots_resend() -> list[int]:
    """Send again the requests no snapshot answered within REQUEST_RESEND_SECONDS (lost message,
    worker down); the minute tick's part. Returns the projects' ids."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=REQUEST_RESEND_SECONDS)
    with transaction.atomic():
        stale = DashboardSnapshot.objects.filter(requested_at__lt=cutoff).filter(
            Q(counted_at__isnull=True) | Q(counted_at__lt=F("requested_at"))
        )
        ids = list(stale.values_list("project_id", flat=True))
        if ids:
            DashboardSnapshot.objects.filter(project_id__in=ids).update(requested_at=now)
            _send(ids)
    return ids
