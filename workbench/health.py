"""Checks behind the status page: database, migrations, broker, workers, beat, queues.

Each check returns a `Check` and never raises, so one broken part never hides the others. A
check that is neither passing nor failing (a worker busy with a long job) says so in `state`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from django.utils import timezone


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    elapsed_ms: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)
    state: str = ""  # when not ok: "" failing, else a word for neither (e.g. "busy")

    @property
    def failing(self) -> bool:
        return not self.ok and not self.state


def _timed(name: str, fn: Any) -> Check:
    started = time.perf_counter()
    state = ""
    try:
        ok, detail, data = fn()
        state = data.pop("state", "")
    except Exception as exc:  # a status page reports failures, it does not raise them
        ok, detail, data = False, f"{type(exc).__name__}: {exc}", {}
    return Check(name, ok, detail, (time.perf_counter() - started) * 1000, data, state)


def check_database() -> Check:
    def run() -> tuple[bool, str, dict[str, Any]]:
        connection = connections[DEFAULT_DB_ALIAS]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        vendor = connection.vendor
        if pending:
            return (
                False,
                f"{vendor}: {len(pending)} migrations not applied",
                {"pending": len(pending)},
            )
        return True, f"{vendor}: reachable, all migrations applied", {}

    return _timed("Database", run)


def check_broker() -> Check:
    from workbench.celery import app

    def run() -> tuple[bool, str, dict[str, Any]]:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
        return True, f"{transport}: reachable", {}

    return _timed("Broker", run)


PING_TASK = "workbench.ping"
PING_EVERY_S = 10.0  # a page view sends a new ping when the newest is older than this
ANSWER_FRESH_S = 60.0  # an answer this recent: a worker is alive
ANSWER_WAIT_S = 20.0  # a ping unanswered this long: the workers are busy, or there are none
PING_KEEP = timedelta(hours=1)  # older ping results are deleted


def ping_send() -> str:
    """Queue a ping task and record it as pending; its result row is the worker's answer.
    Never waits for the answer: the next view of the page reads it. Returns the task id."""
    from django_celery_results.models import TaskResult

    from workbench.tasks import ping

    now = timezone.now()
    TaskResult.objects.filter(task_name=PING_TASK, date_created__lt=now - PING_KEEP).delete()
    task_id = str(uuid.uuid4())
    TaskResult.objects.create(task_id=task_id, task_name=PING_TASK, status="PENDING")
    try:
        ping.apply_async(args=[task_id], task_id=task_id, retry=False)
    except Exception:
        TaskResult.objects.filter(task_id=task_id).delete()
        raise
    return task_id


def check_workers(*, send: bool = True) -> Check:
    """Whether a worker answers, read from the answers to earlier pings (a ping is a task whose
    result the worker stores), so the page never waits for one. A ping still waiting while a
    job runs means the workers are busy (a solo worker answers nothing while it runs a task),
    which is reported as such, not as failing. `send`: queue a new ping when the last is old."""
    from django_celery_results.models import TaskResult

    from workbench.core.models import Job, JobStatus

    def run() -> tuple[bool, str, dict[str, Any]]:
        now = timezone.now()
        pings = TaskResult.objects.filter(task_name=PING_TASK)
        newest = pings.order_by("-date_created").first()
        if send and (newest is None or _age(now, newest.date_created) >= PING_EVERY_S):
            ping_send()
        answer = pings.filter(status="SUCCESS").order_by("-date_done").first()
        if answer is not None and _age(now, answer.date_done) <= ANSWER_FRESH_S:
            worker = answer.worker or "a worker"
            age = int(_age(now, answer.date_done))
            return True, f"{worker} answered a ping {age} s ago", {"workers": [worker]}
        waiting = pings.filter(status="PENDING")
        if answer is not None:
            waiting = waiting.filter(date_created__gt=answer.date_done)
        first = waiting.order_by("date_created").first()
        if first is None:
            return False, "no ping could be sent", {"workers": []}
        waited = int(_age(now, first.date_created))
        if waited < ANSWER_WAIT_S:
            detail = f"a ping was sent {waited} s ago; no answer yet"
            return False, detail, {"workers": [], "state": "waiting"}
        beat_cutoff = now - timedelta(seconds=float(settings.JOB_STALE_SECONDS))
        running = list(
            Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__gte=beat_cutoff)
            .order_by("started_at")
            .values_list("kind", flat=True)[:5]
        )
        if running:
            detail = (
                f"busy: a ping sent {waited} s ago waits while the workers run {', '.join(running)}"
            )
            return False, detail, {"workers": [], "state": "busy"}
        return False, f"no worker answered a ping sent {waited} s ago", {"workers": []}

    return _timed("Workers", run)


def _age(now: Any, then: Any) -> float:
    return float((now - then).total_seconds())


BEAT_SILENCE_SECONDS = 120.0


def check_beat(max_silence_s: float = BEAT_SILENCE_SECONDS) -> Check:
    """Beat's scheduler writes a heartbeat every 15 s and the minute tick it sends writes one
    when a worker runs it: failing when neither is newer than two minutes."""
    from workbench.core.heartbeats import BEAT, TICK, heartbeat_ages

    def run() -> tuple[bool, str, dict[str, Any]]:
        ages = heartbeat_ages(BEAT, TICK)
        seen = [a for a in ages.values() if a is not None]
        said = "; ".join(
            f"{what} {'never' if age is None else f'{int(age)} s ago'}"
            for what, age in (("beat last seen", ages[BEAT]), ("minute tick last ran", ages[TICK]))
        )
        data = {"beat_age_s": ages[BEAT], "tick_age_s": ages[TICK]}
        if not seen:
            return False, f"BEAT HAS NEVER RUN: start one `celery -A workbench beat` ({said})", data
        if min(seen) > max_silence_s:
            return (
                False,
                f"BEAT HAS NOT RUN FOR {int(min(seen))} s (over {int(max_silence_s)} s): "
                f"no retrain is reaped, resent or started ({said})",
                data,
            )
        return True, said, data

    return _timed("Beat", run)


def queue_sizes() -> list[dict[str, Any]]:
    """Per project: open, claimed and done queue items."""
    from labeling.models import Project, QueueItem

    counts: dict[int, dict[str, int]] = {}
    for row in QueueItem.objects.values("project_id", "status").annotate(n=Count("id")):
        counts.setdefault(row["project_id"], {})[row["status"]] = row["n"]
    return [
        {
            "project": project,
            **{s: counts.get(project.pk, {}).get(s, 0) for s in ("open", "claimed", "done")},
        }
        for project in Project.objects.order_by("name")
    ]


def latest_jobs(limit: int = 20) -> list[Any]:
    from workbench.core.models import Job

    return list(Job.objects.select_related("project").order_by("-created_at")[:limit])


def status_report() -> dict[str, Any]:
    database = check_database()
    broker = check_broker()
    checks = [database, broker]
    if database.ok:
        checks.append(check_workers(send=broker.ok))
        checks.append(check_beat())
    return {
        "checks": checks,
        "ok": not any(c.failing for c in checks),
        "queues": queue_sizes() if database.ok else [],
        "jobs": latest_jobs() if database.ok else [],
    }
