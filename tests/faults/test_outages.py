"""Analysts keep labelling over HTTP through a Redis outage and a PostgreSQL restart.

gunicorn (3 workers) on this run's own servers; five simulated analysts answer cards as the
queue page's htmx does. Whatever the site acknowledged (2xx) must be in the database afterwards.
While PostgreSQL is down the site must say so: HTTP 503 with a readable page (or, for htmx, a
short notice the queue page shows), never a stack trace or a bare 500.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from bench.http_analysts import Browser, run_analysts
from tests.faults.conftest import stored_submissions
from workbench.error_pages import MSG_DATABASE_DOWN

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

ANALYSTS = 5
THINK = (0.2, 0.6)  # seconds per card: brisk, so the outages see plenty of submits
REDIS_DOWN_SECONDS = 30  # issue 18's outage
PG_DOWN_SECONDS = 8


def _crowd_during(outage, *, port: int, project, label, keys, duration: float):
    """Run the analysts for `duration` s while `outage()` runs in a thread; returns the crowd
    and what `outage` returned (times of the outage, monotonic)."""
    window: dict = {}

    def run() -> None:
        try:
            window.update(outage())
        except BaseException as exc:
            window["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    crowd = run_analysts(
        port=port,
        session_keys=keys,
        project_slug=project.slug,
        label_id=label.pk,
        duration=duration,
        think=THINK,
        tolerate_errors=True,
    )
    thread.join(timeout=120)
    connections.close_all()  # this process's connection may have died with the server
    assert not thread.is_alive(), "the outage did not end"
    if "error" in window:
        raise window["error"]
    return crowd, window


def test_every_label_acknowledged_while_redis_is_down_is_stored(
    web, redis_server, crowd_project
) -> None:
    project, label, keys = crowd_project(cases=1500, analysts=ANALYSTS)

    def outage() -> dict:
        time.sleep(3)
        down = time.monotonic()
        redis_server.stop()
        time.sleep(REDIS_DOWN_SECONDS)
        up = time.monotonic()
        redis_server.start()
        return {"down": down, "up": up}

    crowd, window = _crowd_during(
        outage, port=web, project=project, label=label, keys=keys,
        duration=REDIS_DOWN_SECONDS + 8,
    )  # fmt: skip
    acked = crowd.acknowledged()
    during = [a for a in acked if window["down"] < a.at < window["up"]]
    assert len(during) >= 20, f"only {len(during)} submits acknowledged while Redis was down"
    missing = {a.submission for a in acked} - stored_submissions(a.submission for a in acked)
    assert not missing, f"{len(missing)} acknowledged labels are not stored"
    # Redis is only the broker: labelling never needed it, every request succeeded.
    assert not crowd.server_errors(), crowd.server_errors()[:10]
    assert not [a.status for a in crowd.answers if a.status != 200]
    assert not crowd.failed_pages, crowd.failed_pages[:10]
    assert not crowd.errors, crowd.errors[:3]


def _friendly_503(port: int, key: str, path: str) -> None:
    """The queue page and an htmx request, both answered while the database is down."""
    browser = Browser(port, key, timeout=10)
    status, page = browser.request("GET", path)
    text = page.decode()
    assert status == 503, (status, text[:500])
    assert MSG_DATABASE_DOWN in text and "<title>Database unavailable" in text, text[:500]
    assert "Traceback" not in text and "Server Error (500)" not in text
    status, partial = browser.request("GET", path, htmx=True)
    text = partial.decode()
    assert status == 503 and MSG_DATABASE_DOWN in text, (status, text[:500])
    assert "<html" not in text and len(text) < 1000, "htmx gets the notice alone"


def test_postgres_restart_loses_no_acknowledged_label_and_says_503_meanwhile(
    web, pg_server, crowd_project
) -> None:
    project, label, keys = crowd_project(cases=1000, analysts=ANALYSTS)
    queue_path = f"/projects/{project.slug}/queue/"

    def outage() -> dict:
        time.sleep(3)
        down = time.monotonic()
        pg_server.stop()
        try:
            _friendly_503(web, keys[0], queue_path)
        finally:
            time.sleep(max(0.0, PG_DOWN_SECONDS - (time.monotonic() - down)))
            up = time.monotonic()
            pg_server.start()
        return {"down": down, "up": up}

    crowd, window = _crowd_during(
        outage, port=web, project=project, label=label, keys=keys, duration=PG_DOWN_SECONDS + 12
    )
    acked = crowd.acknowledged()
    missing = {a.submission for a in acked} - stored_submissions(a.submission for a in acked)
    assert not missing, f"{len(missing)} acknowledged labels are not stored"
    after = [a for a in acked if a.at > window["up"]]
    assert len(after) >= 10, "labelling did not resume after the restart"
    # Every failure the analysts met was the friendly 503, never a bare 500.
    failures = [a.status for a in crowd.answers if a.status != 200] + [
        s for s, _ in crowd.failed_pages
    ]
    assert failures, "no request met the outage"
    assert set(failures) == {503}, sorted(set(failures))
    assert not crowd.errors, crowd.errors[:3]
