"""Read-only checks behind the status page: database, migrations, broker, workers, beat, queues.

Each check returns a `Check` and never raises, so one broken part never hides the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    elapsed_ms: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


def _timed(name: str, fn: Any) -> Check:
    started = time.perf_counter()
    try:
        ok, detail, data = fn()
    except Exception as exc:  # a status page reports failures, it does not raise them
        ok, detail, data = False, f"{type(exc).__name__}: {exc}", {}
    return Check(name, ok, detail, (time.perf_counter() - started) * 1000, data)


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


def check_workers(timeout: float = 1.5) -> Check:
    from workbench.celery import app

    def run() -> tuple[bool, str, dict[str, Any]]:
        replies = app.control.ping(timeout=timeout) or []
        names = sorted(name for reply in replies for name in reply)
        if not names:
            return False, "no worker answered a ping", {"workers": []}
        return True, f"{len(names)} alive: {', '.join(names)}", {"workers": names}

    return _timed("Workers", run)


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
    checks = [database, check_broker(), check_workers()]
    if database.ok:
        checks.append(check_beat())
    return {
        "checks": checks,
        "ok": all(c.ok for c in checks),
        "queues": queue_sizes() if database.ok else [],
        "jobs": latest_jobs() if database.ok else [],
    }
