"""Asking for a retrain: cheap enough to call after every label, from web requests and imports.

Kept apart from the chain (`retrain.py`) so that web processes and imports never load
scikit-learn, skops or torch just to queue a job. A request creates a queued `Job` unless one is
queued or running, and sends it to a worker after commit; the minute due-check resends it if
the broker lost it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from labeling import statements
from labeling.models import Project
from workbench.core import sql
from workbench.core.jobs import job_create
from workbench.core.leases import lease_holder
from workbench.core.models import Job, JobKind, JobStatus

log = logging.getLogger(__name__)

KIND = JobKind.RETRAIN
BACKOFF_FAILURES = 3  # automatic retrains pause after this many failures in a row...
BACKOFF_MINUTES = 30  # ...within this many minutes
MAX_ATTEMPTS = 3  # runs of one request lost to a dead worker before it is given up
ERR_GIVEN_UP = (
    "GIVEN UP: this retrain was lost {n} times in a row (no heartbeat: its worker was killed "
    "or hung) and is not requested again. Check the workers' logs (memory, time limits), then "
    "use Retrain now."
)


def lease_name(project_id: int) -> str:
    return f"retrain:{project_id}"


def retrain_running(*, project: Project) -> bool:
    return lease_holder(name=lease_name(project.pk)) is not None


def failing_repeatedly(*, project: Project) -> bool:
    """The last BACKOFF_FAILURES retrains all failed within BACKOFF_MINUTES: stop retrying."""
    recent = list(
        Job.objects.filter(project=project, kind=KIND)
        .order_by("-created_at")
        .values_list("status", "created_at")[:BACKOFF_FAILURES]
    )
    cutoff = timezone.now() - timedelta(minutes=BACKOFF_MINUTES)
    return len(recent) == BACKOFF_FAILURES and all(
        status == JobStatus.FAILED and created > cutoff for status, created in recent
    )


def retrain_pending(*, project: Project) -> Job | None:
    """The project's queued or running retrain job, if any."""
    return (
        Job.objects.filter(
            project=project, kind=KIND, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
        )
        .order_by("-pk")
        .first()
    )


def retrain_retry_of(*, job: Job) -> Job | None:
    """The job that re-requests `job` after the reaper failed it, once the tick made one."""
    return Job.objects.filter(kind=KIND, params__retry_of=job.pk).order_by("pk").first()


def _pending(project: Project) -> bool:
    return Job.objects.filter(
        project=project, kind=KIND, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
    ).exists()


def retrain_request(
    *,
    project: Project,
    reason: str,
    automatic: bool = False,
    params: dict[str, Any] | None = None,
) -> Job | None:
    """Create a queued retrain job unless one is queued or running; returns it (or None).

    Automatic requests (the label counter, a low queue) also back off while the project's
    retrains keep failing, so a broken project does not burn a worker every minute; an
    admin's request always goes through.
    """
    if automatic and _pending(project):
        # The common case after every label once N is passed: no lock on the project's row,
        # which every label's transaction updates (its counter) and every insert referencing
        # the project key-share locks at commit.
        return None
    with transaction.atomic():
        # NO KEY UPDATE: serializes requests of the project (and its counter's updates) without
        # blocking the key-share locks of the foreign-key checks of concurrent labels' inserts.
        Project.objects.select_for_update(no_key=True).filter(pk=project.pk).values_list(
            "pk"
        ).first()
        if _pending(project) or retrain_running(project=project):
            return None
        if automatic and failing_repeatedly(project=project):
            log.warning("project %s: retrains keep failing; waiting before the next", project.pk)
            return None
        return job_create(kind=KIND, project=project, params={**(params or {}), "reason": reason})


def _enqueue(job: Job) -> None:
    from active_learning.tasks import retrain_project as task

    def send() -> None:
        try:
            result = task.delay(job.pk)
            Job.objects.filter(pk=job.pk).update(celery_task_id=result.id or "")
        except Exception:  # broker down: the job stays queued and the next tick resends it
            log.warning("could not enqueue retrain job %s; the minute tick will retry", job.pk)

    transaction.on_commit(send)


def retrain_start(
    *,
    project: Project,
    reason: str,
    automatic: bool = False,
    params: dict[str, Any] | None = None,
) -> Job | None:
    """Request a retrain and send it to a worker after commit (None when one is pending)."""
    job = retrain_request(project=project, reason=reason, automatic=automatic, params=params)
    if job is not None:
        _enqueue(job)
    return job


def retrain_if_due(*, project_id: int) -> Job | None:
    """Start a retrain when the project's label counter has passed N; never raises."""
    try:
        # One plain query after each label once N is passed: due, and no retrain already queued
        # or running (the usual case then, which takes no lock at all).
        if sql.fetch_one(statements.RETRAIN_DUE, {"project": project_id}) is None:
            return None
        return retrain_start(
            project=Project.objects.get(pk=project_id),
            reason="labels since training passed N",
            automatic=True,
        )
    except Exception:  # labeling must never fail because a retrain could not start
        log.exception("retrain shortcut failed for project %s", project_id)
        return None


def retrain_retry_reaped() -> dict[str, list[int]]:
    """Request again, once, each retrain the reaper failed (its worker was killed or hung),
    whatever asked for it; after MAX_ATTEMPTS lost runs in a row, say so on the job instead.

    Each reaped job is handled once (`params["handled"]`), in the transaction that requests its
    successor, so a tick that dies half way repeats nothing and loses nothing. A retrain
    requested after it (queued, running or done) stands in for it.
    """
    done: dict[str, list[int]] = {"retried": [], "superseded": [], "given_up": []}
    pending = Job.objects.filter(kind=KIND, reaped_at__isnull=False, project__isnull=False)
    for job_id in pending.exclude(params__has_key="handled").values_list("pk", flat=True):
        with transaction.atomic():
            job = (
                Job.objects.select_for_update(of=("self",)).select_related("project").get(pk=job_id)
            )
            if "handled" in job.params or job.project is None:
                continue
            attempt = int(job.params.get("attempt", 1))
            newer = Job.objects.filter(project=job.project, kind=KIND, pk__gt=job.pk)
            if newer.exists():  # asked for again meanwhile (a label, an admin): that one counts
                outcome, message = "superseded", "lost (no heartbeat); a newer retrain covers it"
            elif attempt >= MAX_ATTEMPTS:
                outcome, message = "given_up", ERR_GIVEN_UP.format(n=attempt)
            else:
                retry = retrain_request(
                    project=job.project,
                    reason=str(job.params.get("reason", "retrain")),
                    params={"attempt": attempt + 1, "retry_of": job.pk},
                )
                if retry is None:
                    outcome, message = "superseded", "lost (no heartbeat); another retrain runs"
                else:
                    _enqueue(retry)
                    outcome = "retried"
                    message = f"lost (no heartbeat); requested again as job #{retry.pk}"
            job.params = {**job.params, "handled": outcome}
            job.message = message[:500]
            if outcome == "given_up":  # first in the error, which both pages show
                job.error = f"{message}\n{job.error}"
            job.save(update_fields=["params", "message", "error"])
            done[outcome].append(job.pk)
            if outcome == "given_up":
                log.error("project %s: retrain job %s %s", job.project_id, job.pk, message)
    return done
