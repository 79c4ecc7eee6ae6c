"""Jobs beat while they run, record their outcome, and are reaped when their heartbeat stops."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from workbench.core.jobs import (
    job_create,
    job_progress,
    job_reap_stale,
    job_running,
)
from workbench.core.leases import lease_acquire, lease_holder, lease_release, lease_renew
from workbench.core.models import Job, JobStatus, Lease


@pytest.mark.django_db(transaction=True)
def test_heartbeat_thread_beats_while_the_step_runs(settings) -> None:
    settings.JOB_HEARTBEAT_SECONDS = 0.2
    job = job_create(kind="test")
    with job_running(job):
        first = Job.objects.get(pk=job.pk).heartbeat_at
        time.sleep(0.7)
        later = Job.objects.get(pk=job.pk).heartbeat_at
        assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING
    assert later > first
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.progress == 1.0 and job.finished_at


@pytest.mark.django_db
def test_a_failing_step_records_the_error() -> None:
    job = job_create(kind="test")
    with pytest.raises(ValueError), job_running(job):
        job_progress(job_id=job.pk, progress=0.5, message="half way")
        raise ValueError("bad embedding dimension")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "ValueError: bad embedding dimension" in job.error
    assert job.progress == 0.5 and job.message == "half way"


@pytest.mark.django_db
def test_progress_is_clamped_to_unit_interval() -> None:
    job = job_create(kind="test")
    with job_running(job):
        job_progress(job_id=job.pk, progress=7)
        assert Job.objects.get(pk=job.pk).progress == 1.0


@pytest.mark.django_db
def test_reaper_fails_silent_jobs_and_frees_their_leases(settings) -> None:
    settings.JOB_STALE_SECONDS = 5
    now = timezone.now()
    dead = Job.objects.create(
        kind="retrain", status=JobStatus.RUNNING, heartbeat_at=now - timedelta(seconds=6)
    )
    alive = Job.objects.create(
        kind="retrain", status=JobStatus.RUNNING, heartbeat_at=now - timedelta(seconds=1)
    )
    assert lease_acquire(name="retrain:1", holder="w1", seconds=600, job=dead)
    assert job_reap_stale(now=now) == [dead.pk]
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == JobStatus.FAILED and "No heartbeat for 6 s" in dead.error
    assert alive.status == JobStatus.RUNNING
    assert not Lease.objects.exists()


@pytest.mark.django_db
def test_lease_is_exclusive_until_it_expires_or_is_released() -> None:
    assert lease_acquire(name="x", holder="a", seconds=60)
    assert not lease_acquire(name="x", holder="b", seconds=60)
    assert lease_acquire(name="x", holder="a", seconds=60)  # re-entrant for its holder
    assert lease_renew(name="x", holder="a", seconds=60)
    assert not lease_renew(name="x", holder="b", seconds=60)
    assert lease_holder(name="x") == "a"
    Lease.objects.filter(name="x").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert lease_holder(name="x") is None
    assert lease_acquire(name="x", holder="b", seconds=60)
    lease_release(name="x", holder="b")
    assert lease_acquire(name="x", holder="c", seconds=60)
