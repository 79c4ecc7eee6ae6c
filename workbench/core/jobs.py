"""Jobs the UI can follow, with a heartbeat; a job whose heartbeat stops is failed by the reaper.

Use `job_running(job)` around a long step: it marks the job running, beats from a thread every
JOB_HEARTBEAT_SECONDS while the step runs (so a long fit is never mistaken for a dead worker),
and records success or the error. Progress goes through `job_progress`. A job whose worker is
asked to stop (`workbench.core.stopping`) is handed back to `queued` (or failed, for kinds that
cannot rerun), with its leases freed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, models, transaction
from django.utils import timezone

from workbench.core.models import Job, JobStatus, Lease
from workbench.core.stopping import ERR_STOPPING, WorkerStopping

FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
PENDING = (JobStatus.QUEUED, JobStatus.RUNNING)
ERR_STALE = "No heartbeat for {seconds:.0f} s: the worker running this job died or hung."
MSG_HANDED_BACK = "Handed back: its worker was asked to stop; it runs again on the next worker."

# Jobs this process runs now -> True when a stop hands them back, False when it fails them.
_current: dict[int, bool] = {}


def job_create(
    *, kind: str, project: models.Model | None = None, params: dict[str, Any] | None = None
) -> Job:
    # By id: core cannot name labeling.Project, the type the plugin expects for `project`.
    project_id = project.pk if project is not None else None
    return Job.objects.create(kind=kind, project_id=project_id, params=params or {})


def job_progress(*, job_id: int, progress: float, message: str | None = None) -> None:
    """Record progress in [0, 1] (clamped) and optionally a message; also counts as a heartbeat."""
    fields: dict[str, Any] = {
        "progress": min(1.0, max(0.0, float(progress))),
        "heartbeat_at": timezone.now(),
    }
    if message is not None:
        fields["message"] = message[:500]
    Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(**fields)


log = logging.getLogger(__name__)


def job_claim(*, job_id: int, kind: str) -> Job | None:
    """Move a project's queued job of `kind` to running and return it (its project loaded); None
    when it is not queued any more. However many messages carry a job, one runner gets it."""
    now = timezone.now()
    claimed = Job.objects.filter(
        pk=job_id, kind=kind, status=JobStatus.QUEUED, project__isnull=False
    ).update(status=JobStatus.RUNNING, started_at=now, heartbeat_at=now)
    if not claimed:
        return None
    return Job.objects.select_related("project").get(pk=job_id)


def job_send(*, job_id: int, task: Any, queue: str) -> bool:
    """Send the Celery `task` (called with the job's id) to `queue` and keep its task id; never
    raises. Broker down: the job stays queued (the database holds it, not the broker) and the
    minute tick sends it again."""
    try:
        result = task.apply_async(args=[job_id], queue=queue)
        Job.objects.filter(pk=job_id).update(celery_task_id=getattr(result, "id", None) or "")
    except Exception:
        log.warning("could not enqueue job %s; it will be resent", job_id, exc_info=True)
        return False
    return True


def _progress_and_close(job_id: int, progress: float, message: str) -> None:
    try:
        job_progress(job_id=job_id, progress=progress, message=message)
    finally:
        connection.close()  # this thread's own connection


def job_progress_aside(*, job_id: int, progress: float, message: str) -> None:
    """`job_progress` through a connection of its own (a short thread, waited for at most 5 s),
    for a caller inside a transaction: its own writes would show only at commit, and a
    read-only one refuses them."""
    thread = threading.Thread(target=_progress_and_close, args=(job_id, progress, message))
    thread.start()
    thread.join(timeout=5)


def _beat_forever(job_id: int, interval: float, stop: threading.Event) -> None:
    try:
        while not stop.wait(interval):
            try:
                Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
            except DatabaseError:
                # e.g. SQLite busy behind the step's own long write: try again next beat.
                connection.close()
    finally:
        connection.close()  # this thread's own connection


@contextlib.contextmanager
def job_heartbeat(*, job_id: int, interval: float | None = None) -> Iterator[None]:
    """Beat for `job_id` from a daemon thread until the block exits."""
    stop = threading.Event()
    beat = threading.Thread(
        target=_beat_forever,
        args=(job_id, float(interval or settings.JOB_HEARTBEAT_SECONDS), stop),
        name=f"job-{job_id}-heartbeat",
        daemon=True,
    )
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=5)


def job_hand_back(*, job_id: int) -> bool:
    """Put a running job back in `queued` and free its leases, for the next worker to run.

    The minute tick resends queued jobs whose message is gone, so nothing else is needed.
    """
    with transaction.atomic():
        moved = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
            status=JobStatus.QUEUED,
            started_at=None,
            heartbeat_at=None,
            progress=0.0,
            message=MSG_HANDED_BACK,
        )
        Lease.objects.filter(job_id=job_id).delete()
    return bool(moved)


def job_fail_stopped(*, job_id: int) -> None:
    with transaction.atomic():
        Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED, finished_at=timezone.now(), error=ERR_STOPPING
        )
        Lease.objects.filter(job_id=job_id).delete()


def jobs_abandon_current() -> None:
    """Hand back (or fail) every job this process runs: its worker stops without finishing."""
    try:
        for job_id, hand_back in list(_current.items()):
            if hand_back:
                job_hand_back(job_id=job_id)
            else:
                job_fail_stopped(job_id=job_id)
    finally:
        connection.close()  # the calling thread's own connection


@contextlib.contextmanager
def job_running(job: Job, *, hand_back_on_stop: bool = False) -> Iterator[Job]:
    """Run the block as `job`: running + heartbeat, then succeeded, or failed with the error.

    When the worker is asked to stop (`WorkerStopping`), a job that can rerun from the start
    (`hand_back_on_stop`) goes back to `queued`; any other is failed. Leases go with it.
    """
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, error=""
    )
    job.refresh_from_db()
    _current[job.pk] = hand_back_on_stop
    try:
        with job_heartbeat(job_id=job.pk):
            yield job
    except WorkerStopping:
        if hand_back_on_stop:
            job_hand_back(job_id=job.pk)
        else:
            job_fail_stopped(job_id=job.pk)
        raise
    except BaseException as exc:
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"[:20000],
        )
        raise
    finally:
        _current.pop(job.pk, None)
    Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.SUCCEEDED, progress=1.0, finished_at=timezone.now()
    )
    job.refresh_from_db()


def job_set_result(*, job_id: int, result: dict[str, Any], message: str | None = None) -> None:
    fields: dict[str, Any] = {"result": result}
    if message is not None:
        fields["message"] = message[:500]
    Job.objects.filter(pk=job_id).update(**fields)


def job_reap_stale(*, now: Any = None) -> list[int]:
    """Fail running jobs whose heartbeat is older than JOB_STALE_SECONDS and free their leases.

    Marks them `reaped_at` so their owner can ask for the work again; returns their ids.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=float(settings.JOB_STALE_SECONDS))
    reaped: list[int] = []
    with transaction.atomic():
        stale = Job.objects.select_for_update().filter(
            status=JobStatus.RUNNING, heartbeat_at__lt=cutoff
        )
        for job in stale:
            job.status = JobStatus.FAILED
            job.error = ERR_STALE.format(seconds=(now - job.heartbeat_at).total_seconds())
            job.finished_at = job.reaped_at = now
            job.save(update_fields=["status", "error", "finished_at", "reaped_at"])
            reaped.append(job.pk)
        if reaped:
            Lease.objects.filter(job_id__in=reaped).delete()
    return reaped


class JobNotStarted(Exception):
    """A job stayed queued longer than the caller would wait: no worker took it."""


def job_wait(
    *,
    job_id: int,
    on_update: Callable[[Job], None] = lambda job: None,
    start_timeout: float = 120.0,
    poll_seconds: float = 0.5,
) -> Job:
    """Poll `job_id` until it finishes, calling `on_update` whenever its progress, message or
    status changes; raise JobNotStarted when it is still queued after `start_timeout` s."""
    started = time.monotonic()
    seen: tuple[Any, ...] | None = None
    while True:
        job = Job.objects.get(pk=job_id)
        state = (job.status, job.progress, job.message)
        if state != seen:
            on_update(job)
            seen = state
        if job.status in FINISHED:
            return job
        if job.status == JobStatus.QUEUED and time.monotonic() - started > start_timeout:
            raise JobNotStarted(job_id)
        time.sleep(poll_seconds)


MSG_RERUN = "Its worker stopped answering; running again (attempt {n})."
ERR_GIVEN_UP = "Its worker stopped answering {n} times; start it again."


def jobs_recover(
    *,
    kind: str,
    send: Callable[[int], bool],
    before_rerun: Callable[[int], None] = lambda job_id: None,
    max_attempts: int = 3,
    resend_after_seconds: float = 120,
    rerun_message: str = MSG_RERUN,
    given_up_message: str = ERR_GIVEN_UP,
    now: Any = None,
) -> tuple[list[int], list[int]]:
    """For jobs of `kind` that rerun as themselves (the page keeps following the same job):
    put each job the reaper failed back in `queued` and send it, up to `max_attempts` runs
    (`params["attempt"]` counts them; after that the job says it gave up), calling
    `before_rerun(job_id)` first (e.g. to empty a killed run's folder); and send again the queued
    jobs older than `resend_after_seconds`, whose message was lost. Returns (rerun, resent);
    never raises for a broker that is down (`send` returns False, the next tick retries)."""
    now = now or timezone.now()
    rerun: list[int] = []
    reaped = Job.objects.filter(kind=kind, status=JobStatus.FAILED, reaped_at__isnull=False)
    for job_id in reaped.exclude(params__has_key="handled").values_list("pk", flat=True):
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job_id)
            if job.status != JobStatus.FAILED or job.reaped_at is None:
                continue
            attempt = int(job.params.get("attempt", 1))
            if attempt >= max_attempts:
                job.params = {**job.params, "handled": "given_up"}
                job.message = given_up_message.format(n=attempt)[:500]
                job.save(update_fields=["params", "message"])
                continue
            Job.objects.filter(pk=job.pk).update(
                status=JobStatus.QUEUED,
                params={**job.params, "attempt": attempt + 1},
                message=rerun_message.format(n=attempt + 1)[:500],
                progress=0.0,
                error="",
                reaped_at=None,
                started_at=None,
                finished_at=None,
                heartbeat_at=None,
                created_at=now,
            )
        before_rerun(job_id)
        if send(job_id):
            rerun.append(job_id)
    cutoff = now - timedelta(seconds=resend_after_seconds)
    stale = Job.objects.filter(kind=kind, status=JobStatus.QUEUED, created_at__lt=cutoff)
    resent = [job_id for job_id in stale.values_list("pk", flat=True) if send(job_id)]
    return rerun, resent
