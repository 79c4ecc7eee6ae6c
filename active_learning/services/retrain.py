"""The retrain chain and its triggers.

`retrain_project` runs, one at a time per project under a database lease: embed -> find label
issues -> refresh the review items -> train -> promote -> score -> refresh the queue -> the
dashboard's snapshot, each step reporting progress in one `Job` with a heartbeat thread. `retrain_due_check` (the minute beat task) reaps stale jobs and
starts a retrain for every project whose labels-since-training counter passed N. The counter and
the jobs live in the database, so a lost broker message or a killed worker delays a retrain but
never loses one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from threadpoolctl import threadpool_limits

from active_learning.models import ModelVersion
from active_learning.selectors import champion_of
from active_learning.services import (
    consensus,
    dashboard,
    embedding_jobs,
    embeddings,
    issues,
    promotion,
    queue_refresh,
    review_items,
    scoring,
    training,
)
from active_learning.services.retrain_requests import (
    KIND,
    _enqueue,
    lease_name,
    retrain_if_due,
    retrain_request,
    retrain_retry_reaped,
    retrain_start,
)
from labeling.models import Project, QueueItem, QueueStatus
from workbench.core.jobs import job_progress, job_reap_stale, job_running
from workbench.core.leases import lease_acquire, lease_release
from workbench.core.models import Job, JobStatus
from workbench.core.stopping import WorkerStopping, raise_if_stopping

log = logging.getLogger(__name__)

__all__ = [  # the request side lives in retrain_requests; re-exported for callers of the chain
    "KIND",
    "lease_name",
    "retrain_due_check",
    "retrain_if_due",
    "retrain_project",
    "retrain_request",
    "retrain_start",
]

LEASE_SECONDS = 6 * 3600  # a dead holder's lease is freed earlier by the reaper, with its job
RESEND_AFTER_SECONDS = 120


def retrain_due_check() -> dict[str, Any]:
    """Reap stale jobs and request their retrains again; start due retrains; resend queued
    retrain jobs nobody picked up (the pipeline's part of the minute tick, `workbench.tick`)."""
    reaped = job_reap_stale()
    lost = retrain_retry_reaped()  # before the counter's check, so the retry keeps its reason
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
    return {"reaped": reaped, **lost, "started": started, "resent": resent}


ERR_REAPED = "this retrain was failed by the reaper (no heartbeat); another may run now"


Reporter = Callable[[float, str], None]


@dataclass
class ChainContext:
    """What the steps of one retrain share: read by later steps, `result` stored on the job."""

    project: Project
    job: Job
    challenger: ModelVersion | None = None
    scores: scoring.Scores | None = None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One step of the chain: its name (prefixing its messages), its share of the progress bar,
    and `run(ctx, report)`, where `report(fraction of this step, message)`."""

    name: str
    share: float
    run: Callable[[ChainContext, Reporter], None]


def run_embed(ctx: ChainContext, report: Reporter) -> None:
    """Embed the few new texts here; many (an import) are the embedding job's, which this retrain
    never waits for: it trains on and scores what is embedded, the next one the rest."""
    model_name = embeddings.model_name_current()
    missing = embeddings.hashes_missing(project=ctx.project, model_name=model_name)
    switching = embeddings.model_name_selected(ctx.project) != model_name
    pending = embedding_jobs.embedding_pending(project=ctx.project)
    if pending is None and switching:
        # A backend change whose job was lost: this retrain still trains on the old vectors.
        embedding_jobs.embedding_start(
            project=ctx.project, reason="the project's embedding backend changed"
        )
    # A pending job of the same vectors covers the missing ones; one of a new backend does not.
    covered = pending is not None and not switching
    if missing and (covered or len(missing) > settings.EMBED_INLINE_MAX):
        job = pending
        if job is None and not switching:
            job = embedding_jobs.embedding_start(
                project=ctx.project,
                reason=f"a retrain found {len(missing):,} texts without vectors",
            )
        ctx.result["embedded"] = 0
        ctx.result["left_to_embedding_job"] = len(missing)
        where = f"embedding job #{job.pk}" if job is not None else "the new backend's embedding job"
        report(1.0, f"{len(missing):,} texts left to {where}; training on what is embedded")
        return
    report(0.0, f"{len(missing)} texts to embed")
    ctx.result["embedded"] = embeddings.embed_missing(
        project=ctx.project,
        hashes=missing,
        progress=lambda d, t: report(d / max(1, t), f"{d}/{t}"),
    )


def run_issues(ctx: ChainContext, report: Reporter) -> None:
    ctx.result["label_issues"] = issues.find_label_issues(
        project=ctx.project, job=ctx.job, progress=report
    )


def run_consensus(ctx: ChainContext, report: Reporter) -> None:
    ctx.result["consensus"] = consensus.consensus_refresh(
        project=ctx.project, job=ctx.job, progress=report
    )


def run_review_items(ctx: ChainContext, report: Reporter) -> None:
    ctx.result["review_items"] = review_items.review_items_refresh(
        project=ctx.project, job=ctx.job, progress=report
    )


def run_train(ctx: ChainContext, report: Reporter) -> None:
    report(0.0, "fitting")
    ctx.challenger = training.train_model(project=ctx.project)
    ctx.result["trained"] = ctx.challenger.number if ctx.challenger else None


def run_promote(ctx: ChainContext, report: Reporter) -> None:
    if ctx.challenger is not None:
        decision = promotion.promotion_decide(challenger=ctx.challenger)
        ctx.result["promotion"] = decision.reason
        report(1.0, decision.reason)


def run_score(ctx: ChainContext, report: Reporter) -> None:
    champion = champion_of(project=ctx.project)
    if champion is not None:
        ctx.scores = scoring.score_pool(project=ctx.project, version=champion, progress=report)
        scoring.predictions_prune(project=ctx.project)


def run_refresh_queue(ctx: ChainContext, report: Reporter) -> None:
    project, scores = ctx.project, ctx.scores
    ctx.result["queue"] = queue_refresh.refresh_queue(project=project, scores=scores)
    if scores is not None:
        queued = QueueItem.objects.filter(
            project=project, status=QueueStatus.OPEN, model_version_id=scores.version.pk
        ).values_list("case_id", flat=True)
        scoring.predictions_add_top_k(scores=scores, case_ids=list(queued))
        queue_refresh.eval_items_refresh_facts(project=project, scores=scores)
    queue_refresh.eval_items_top_up(project=project, scores=scores)
    report(1.0, f"{ctx.result['queue']['created']} items queued")


def run_dashboard(ctx: ChainContext, report: Reporter) -> None:
    """The dashboard's counts and champion figures, recomputed now that the data changed (pages
    read them, never compute them)."""
    report(0.0, "counting")
    try:
        ctx.result["dashboard"] = dashboard.dashboard_snapshot_refresh(
            project=ctx.project, force=True
        )
    except WorkerStopping:
        raise
    except Exception:  # the model is trained and served: a page will ask for the snapshot again
        log.exception("dashboard snapshot of project %s failed", ctx.project.pk)
        ctx.result["dashboard"] = {"failed": True}


PIPELINE: tuple[Step, ...] = (
    Step("embed", 0.22, run_embed),
    Step("label issues", 0.23, run_issues),
    Step("consensus", 0.02, run_consensus),
    Step("review items", 0.03, run_review_items),
    Step("train", 0.2, run_train),
    Step("promote", 0.05, run_promote),
    Step("score", 0.15, run_score),
    Step("refresh queue", 0.08, run_refresh_queue),
    Step("dashboard", 0.02, run_dashboard),
)


def _step_reporter(job: Job, step: Step, done: float) -> Reporter:
    """Progress for `step`, which starts at `done` of the bar; first checks the job is still ours
    (not reaped meanwhile). Each report is also where a stopping worker leaves the chain."""
    raise_if_stopping()
    if not Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).exists():
        raise RuntimeError(ERR_REAPED)

    def report(fraction: float, message: str) -> None:
        raise_if_stopping()
        job_progress(
            job_id=job.pk, progress=done + step.share * fraction, message=f"{step.name}: {message}"
        )

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
        # Stopped midway, the job goes back to `queued` (the chain reruns from the start).
        with (
            job_running(job, hand_back_on_stop=True),
            threadpool_limits(settings.WORKER_THREADS),
        ):
            return _chain(project=project, job=job)
    except WorkerStopping:
        log.warning("retrain job %s handed back: its worker is stopping", job.pk)
        _enqueue(job)  # for the next worker; the minute tick resends it if this is lost
        return {"handed_back": True}
    finally:
        lease_release(name=lease_name(project.pk), holder=holder)


def _chain(*, project: Project, job: Job) -> dict[str, Any]:
    # Labels counted now are consumed only if the chain finishes: a killed run stays due.
    counted = Project.objects.values_list("labels_since_training", flat=True).get(pk=project.pk)
    training.model_versions_fail_stale(project=project)
    ctx = ChainContext(project=project, job=job)
    done = 0.0
    with embeddings.model_in_use(embeddings.model_name_for(project)):
        for step in PIPELINE:
            step.run(ctx, _step_reporter(job, step, done))
            done += step.share
    Project.objects.filter(pk=project.pk).update(
        labels_since_training=Greatest(F("labels_since_training") - counted, Value(0))
    )
    job_progress(job_id=job.pk, progress=1.0, message=_summary(ctx.result))
    Job.objects.filter(pk=job.pk).update(result=ctx.result)
    return ctx.result


def _summary(result: dict[str, Any]) -> str:
    parts = [f"embedded {result.get('embedded', 0)}"]
    if result.get("left_to_embedding_job"):
        parts.append(f"{result['left_to_embedding_job']:,} left to the embedding job")
    if result.get("trained"):
        parts.append(f"trained v{result['trained']}")
    if result.get("promotion"):
        parts.append(result["promotion"])
    parts.append(f"{result.get('queue', {}).get('created', 0)} queue items")
    review = result.get("review_items") or {}
    if review.get("created") or review.get("refreshed"):
        parts.append(f"{review.get('created', 0)} new review items")
    return "; ".join(parts)[:500]
