"""The retrain chain and its triggers.

`retrain_project` runs, one at a time per project under a database lease: embed -> find label
issues -> train -> promote -> score -> refresh the queue, each step reporting progress in one
`Job` with a heartbeat thread. `retrain_due_check` (the minute beat task) reaps stale jobs and
starts a retrain for every project whose labels-since-training counter passed N. The counter and
the jobs live in the database, so a lost broker message or a killed worker delays a retrain but
never loses one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from threadpoolctl import threadpool_limits

from active_learning.models import Job, JobStatus, ModelVersion
from active_learning.selectors import champion_of
from active_learning.services import embeddings, issues, promotion, queue_refresh, scoring, training
from active_learning.services.jobs import job_create, job_progress, job_reap_stale, job_running
from active_learning.services.leases import lease_acquire, lease_holder, lease_release
from labeling.models import Project

log = logging.getLogger(__name__)

KIND = "retrain"
LEASE_SECONDS = 6 * 3600  # a dead holder's lease is freed earlier by the reaper, with its job
RESEND_AFTER_SECONDS = 120
BACKOFF_FAILURES = 3  # automatic retrains pause after this many failures in a row...
BACKOFF_MINUTES = 30  # ...within this many minutes
STEPS = (  # (name, share of the progress bar)
    ("embed", 0.25),
    ("label issues", 0.25),
    ("train", 0.2),
    ("promote", 0.05),
    ("score", 0.15),
    ("refresh queue", 0.1),
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


def _pending(project: Project) -> bool:
    return Job.objects.filter(
        project=project, kind=KIND, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
    ).exists()


def retrain_request(*, project: Project, reason: str, automatic: bool = False) -> Job | None:
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
        return job_create(kind=KIND, project=project, params={"reason": reason})


def _enqueue(job: Job) -> None:
    from active_learning.tasks import retrain_project as task

    def send() -> None:
        try:
            result = task.delay(job.pk)
            Job.objects.filter(pk=job.pk).update(celery_task_id=result.id or "")
        except Exception:  # broker down: the job stays queued and the next tick resends it
            log.warning("could not enqueue retrain job %s; the minute tick will retry", job.pk)

    transaction.on_commit(send)


def retrain_start(*, project: Project, reason: str, automatic: bool = False) -> Job | None:
    """Request a retrain and send it to a worker after commit (None when one is pending)."""
    job = retrain_request(project=project, reason=reason, automatic=automatic)
    if job is not None:
        _enqueue(job)
    return job


def retrain_if_due(*, project_id: int) -> Job | None:
    """Start a retrain when the project's label counter has passed N; never raises."""
    try:
        # One query per label: due, and no retrain already queued or running (the usual case
        # once N is passed, which then takes no lock at all).
        pending = Job.objects.filter(
            project_id=OuterRef("pk"), kind=KIND, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
        )
        project = (
            Project.objects.filter(pk=project_id, labels_since_training__gte=F("retrain_after_n"))
            .exclude(Exists(pending))
            .first()
        )
        if project is None:
            return None
        return retrain_start(
            project=project, reason="labels since training passed N", automatic=True
        )
    except Exception:  # labeling must never fail because a retrain could not start
        log.exception("retrain shortcut failed for project %s", project_id)
        return None


def retrain_due_check() -> dict[str, Any]:
    """Reap stale jobs; start due retrains; resend queued retrain jobs nobody picked up."""
    reaped = job_reap_stale()
    started = []
    for project in Project.objects.filter(labels_since_training__gte=F("retrain_after_n")):
        job = retrain_start(
            project=project, reason="labels since training passed N", automatic=True
        )
        if job is not None:
            started.append(job.pk)
    # A queued job whose message was lost (broker down, or the filesystem broker's worker
    # killed after receiving it): send it again. A duplicate message is harmless: only one
    # runner moves the job from queued to running.
    cutoff = timezone.now() - timedelta(seconds=RESEND_AFTER_SECONDS)
    resent = []
    for job in Job.objects.filter(kind=KIND, status=JobStatus.QUEUED, created_at__lt=cutoff):
        _enqueue(job)
        resent.append(job.pk)
    from labeling.services.imports.jobs import import_jobs_resend_stale

    return {
        "reaped": reaped,
        "started": started,
        "resent": resent,
        "imports_resent": import_jobs_resend_stale(),
    }


ERR_REAPED = "this retrain was failed by the reaper (no heartbeat); another may run now"


def _step_reporter(job: Job, index: int) -> Callable[[float, str], None]:
    """Progress for step `index`; first checks the job is still ours (not reaped meanwhile)."""
    if not Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).exists():
        raise RuntimeError(ERR_REAPED)
    done = sum(share for _, share in STEPS[:index])
    name, share = STEPS[index]

    def report(fraction: float, message: str) -> None:
        job_progress(job_id=job.pk, progress=done + share * fraction, message=f"{name}: {message}")

    return report


def retrain_project(*, job: Job) -> dict[str, Any]:
    """Run the chain for `job.project` if the job is still due and nobody else holds the lease."""
    project = job.project
    assert project is not None
    now = timezone.now()
    # Exactly one runner moves the job out of `queued`, however many messages carry it.
    if not Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now
    ):
        return {"skipped": "job is no longer queued"}
    holder = f"job-{job.pk}-{uuid.uuid4().hex[:8]}"
    if not lease_acquire(
        name=lease_name(project.pk), holder=holder, seconds=LEASE_SECONDS, job=job
    ):
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.CANCELLED,
            finished_at=now,
            message="another retrain of this project is running",
        )
        return {"skipped": "another retrain is running"}
    try:
        # One BLAS thread: on these machines 2-thread fits next to torch ran 10-80x slower.
        with job_running(job), threadpool_limits(settings.WORKER_THREADS):
            return _chain(project=project, job=job)
    finally:
        lease_release(name=lease_name(project.pk), holder=holder)


def _chain(*, project: Project, job: Job) -> dict[str, Any]:
    result: dict[str, Any] = {}
    # Labels counted now are consumed only if the chain finishes: a killed run stays due.
    counted = Project.objects.values_list("labels_since_training", flat=True).get(pk=project.pk)
    training.model_versions_fail_stale(project=project)

    report = _step_reporter(job, 0)
    model_name = embeddings.model_name_current()
    missing = embeddings.hashes_missing(project=project, model_name=model_name)
    report(0.0, f"{len(missing)} texts to embed")
    embedded = embeddings.embed_missing(
        project=project, hashes=missing, progress=lambda d, t: report(d / max(1, t), f"{d}/{t}")
    )
    result["embedded"] = embedded

    report = _step_reporter(job, 1)
    result["label_issues"] = issues.find_label_issues(project=project, job=job, progress=report)

    report = _step_reporter(job, 2)
    report(0.0, "fitting")
    challenger: ModelVersion | None = training.train_model(project=project)
    result["trained"] = challenger.number if challenger else None

    report = _step_reporter(job, 3)
    if challenger is not None:
        decision = promotion.promotion_decide(challenger=challenger)
        result["promotion"] = decision["reason"]
        report(1.0, decision["reason"])

    report = _step_reporter(job, 4)
    champion = champion_of(project=project)
    scores = None
    if champion is not None:
        scores = scoring.score_pool(project=project, version=champion, progress=report)
        scoring.predictions_prune(project=project)

    report = _step_reporter(job, 5)
    result["queue"] = queue_refresh.refresh_queue(project=project, scores=scores)
    if scores is not None:
        queue_refresh.eval_items_refresh_facts(project=project, scores=scores)
    queue_refresh.eval_items_top_up(project=project, scores=scores)
    report(1.0, f"{result['queue']['created']} items queued")
    Project.objects.filter(pk=project.pk).update(
        labels_since_training=Greatest(F("labels_since_training") - counted, Value(0))
    )
    job_progress(job_id=job.pk, progress=1.0, message=_summary(result))
    Job.objects.filter(pk=job.pk).update(result=result)
    return result


def _summary(result: dict[str, Any]) -> str:
    parts = [f"embedded {result.get('embedded', 0)}"]
    if result.get("trained"):
        parts.append(f"trained v{result['trained']}")
    if result.get("promotion"):
        parts.append(result["promotion"])
    parts.append(f"{result.get('queue', {}).get('created', 0)} queue items")
    return "; ".join(parts)[:500]
