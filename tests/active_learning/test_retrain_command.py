"""`manage.py retrain <slug> [--wait]`: the "Retrain now" service from the command line.

Without a worker here: the job row is what the command follows, so these tests move it as a
worker would (from another thread); the run through a real worker is in test_pipeline_worker.
"""

from __future__ import annotations

import io
import threading
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests.factories import ProjectFactory
from workbench.core.models import Job, JobStatus


def _jobs(project) -> list[Job]:
    return list(Job.objects.filter(project=project, kind="retrain").order_by("pk"))


@pytest.mark.django_db
def test_retrain_queues_one_job_like_the_button() -> None:
    project = ProjectFactory(slug="risk")
    out = io.StringIO()
    call_command("retrain", "risk", stdout=out)
    [job] = _jobs(project)
    assert job.status == JobStatus.QUEUED
    assert job.params["reason"] == "manual, from the command line"
    assert f"job #{job.pk}" in out.getvalue()
    out = io.StringIO()
    call_command("retrain", "risk", stdout=out)
    assert f"already queued: job #{job.pk}" in out.getvalue()
    assert len(_jobs(project)) == 1


@pytest.mark.django_db
def test_an_unknown_slug_names_the_known_ones() -> None:
    ProjectFactory(slug="risk")
    with pytest.raises(CommandError, match=r"No project with slug 'rsik'\. Known: risk\."):
        call_command("retrain", "rsik")
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_wait_without_a_worker_says_so_and_exits_2() -> None:
    project = ProjectFactory(slug="risk")
    started = time.monotonic()
    with pytest.raises(CommandError) as exc:
        call_command("retrain", "risk", "--wait", "--start-timeout", "1", stdout=io.StringIO())
    assert exc.value.returncode == 2
    assert "No worker took retrain job" in str(exc.value)
    assert "celery -A workbench worker" in str(exc.value)
    assert time.monotonic() - started < 10
    assert [j.status for j in _jobs(project)] == [JobStatus.QUEUED]  # left for a worker


def _act_as_worker(job_id: int, *, outcome: str) -> None:
    """Move the job as a worker does: running with progress, then the outcome."""
    try:
        time.sleep(1.0)
        Job.objects.filter(pk=job_id).update(status=JobStatus.RUNNING, message="embed: 0/10")
        time.sleep(1.0)
        Job.objects.filter(pk=job_id).update(progress=0.5, message="train: fitting")
        time.sleep(1.0)
        if outcome == "ok":
            Job.objects.filter(pk=job_id).update(
                status=JobStatus.SUCCEEDED, progress=1.0, message="embedded 10, trained v1"
            )
        else:
            Job.objects.filter(pk=job_id).update(
                status=JobStatus.FAILED, error="ValueError: no labels to train on\nTraceback..."
            )
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outcome", ["ok", "failed"])
def test_wait_follows_progress_to_the_end(outcome: str) -> None:
    project = ProjectFactory(slug="risk")
    call_command("retrain", "risk", stdout=io.StringIO())
    [job] = _jobs(project)
    worker = threading.Thread(target=_act_as_worker, args=(job.pk,), kwargs={"outcome": outcome})
    worker.start()
    out = io.StringIO()
    try:
        if outcome == "ok":
            call_command("retrain", "risk", "--wait", stdout=out)
        else:
            with pytest.raises(CommandError) as exc:
                call_command("retrain", "risk", "--wait", stdout=out)
            assert exc.value.returncode == 1
            assert str(exc.value) == (
                f"Retrain job #{job.pk} failed: ValueError: no labels to train on"
            )
    finally:
        worker.join()
    lines = out.getvalue().splitlines()
    assert f"already queued: job #{job.pk}" in lines[0]
    assert any(line.startswith("[...") and "0% queued" in line for line in lines)
    assert any("50% running: train: fitting" in line and "#" * 15 in line for line in lines)
    if outcome == "ok":
        assert f"Job #{job.pk} succeeded: embedded 10, trained v1" in lines[-1]
