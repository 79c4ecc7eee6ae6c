"""The admins' status page reports every part, and only admins see it."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import QueueItemFactory, UserFactory
from workbench import health
from workbench.core.models import Job, JobStatus

pytestmark = pytest.mark.django_db


def test_status_page_lists_checks_queues_and_jobs(admin_client) -> None:
    item = QueueItemFactory()
    Job.objects.create(
        kind="retrain", project=item.project, message="fitting <b>now</b>", progress=0.4
    )
    response = admin_client.get(reverse("status"))
    assert response.status_code == 200
    names = [c.name for c in response.context["checks"]]
    assert names == ["Database", "Broker", "Workers", "Beat"]
    database = response.context["checks"][0]
    assert database.ok and "all migrations applied" in database.detail
    html = response.content.decode()
    assert item.project.name in html
    assert "fitting &lt;b&gt;now&lt;/b&gt;" in html  # job messages are escaped
    # No worker runs during this test: the page sent a ping and waits for its answer.
    workers = response.context["checks"][2]
    assert workers.state == "waiting" and "no answer yet" in workers.detail


def _age_pings(seconds: float) -> None:
    from django_celery_results.models import TaskResult

    TaskResult.objects.filter(task_name=health.PING_TASK).update(
        date_created=timezone.now() - timedelta(seconds=seconds)
    )


def test_the_worker_check_never_waits_for_a_ping(admin_client) -> None:
    """The page sends a ping and reads the answers to earlier ones: no round trip to wait for
    (a synchronous broadcast ping took its whole 1.5 s timeout on every view)."""
    started = time.perf_counter()
    check = health.check_workers()
    assert time.perf_counter() - started < 0.5
    assert check.state == "waiting"
    _age_pings(health.ANSWER_WAIT_S + 5)
    check = health.check_workers(send=False)
    assert check.failing and "no worker answered a ping sent" in check.detail


def test_a_busy_worker_is_busy_not_failing(admin_client) -> None:
    """A ping waiting behind a running job (a solo worker answers nothing mid-task)."""
    health.check_workers()
    _age_pings(health.ANSWER_WAIT_S + 5)
    job = Job.objects.create(kind="retrain", status=JobStatus.RUNNING, heartbeat_at=timezone.now())
    check = health.check_workers(send=False)
    assert check.state == "busy" and not check.failing and "retrain" in check.detail
    html = admin_client.get(reverse("status")).content.decode()
    row = re.search(r"<tr><td>Workers</td>.*?</tr>", html, re.S)
    assert row is not None and "Busy" in row.group() and "Failing" not in row.group()
    Job.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=3600)
    )  # a job whose worker died keeps nobody busy
    assert health.check_workers(send=False).failing


def test_an_answered_ping_means_alive(admin_client) -> None:
    from django_celery_results.models import TaskResult

    TaskResult.objects.create(
        task_id="answered", task_name=health.PING_TASK, status="SUCCESS", worker="w1@host"
    )
    check = health.check_workers(send=False)
    assert check.ok and "w1@host answered a ping" in check.detail


def test_status_partial_for_htmx(admin_client) -> None:
    response = admin_client.get(reverse("status"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="status-checks"')
    assert "<html" not in html


def test_status_page_is_for_staff_only(client) -> None:
    client.force_login(UserFactory())
    response = client.get(reverse("status"))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_healthz_is_public_and_terse(client) -> None:
    response = client.get(reverse("healthz"))
    assert response.status_code == 200 and response.json() == {"ok": True}


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_answers_the_status_pages_ping(tmp_path) -> None:
    """A solo worker on Redis stores the ping's answer; a later view reads it."""
    from django.db import connection

    from tests.conftest import redis_url
    from tests.worker import celery_worker, service_env

    db = connection.settings_dict
    env = service_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        CELERY_BROKER_URL=redis_url(),
        WORKBENCH_VAR_DIR=str(tmp_path / "var"),
    )
    from django_celery_results.models import TaskResult

    with celery_worker(env, tmp_path / "worker.log"):
        # Pings queued by earlier tests may be answered first: follow this one.
        sent = TaskResult.objects.get(task_id=health.ping_send())
        assert sent.status == "PENDING"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sent.refresh_from_db()
            if sent.status == "SUCCESS":
                break
            time.sleep(0.3)
        check = health.check_workers(send=False)
    assert sent.status == "SUCCESS" and sent.worker.startswith("test-")
    assert check.ok and "answered a ping" in check.detail and "@" in check.detail
