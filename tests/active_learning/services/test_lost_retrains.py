"""A retrain whose worker died is requested again by the minute tick, whatever asked for it,
at most MAX_ATTEMPTS runs in a row; then the job says it was given up, on both pages.

A dead worker is what it leaves behind: the job `running` with a silent heartbeat and the
project's retrain lease still held. The real tick (`workbench.tick.minute_tick`) finds it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from active_learning.models import ModelStatus, ModelVersion
from active_learning.services.embedding_jobs import embedding_run
from active_learning.services.retrain import LEASE_SECONDS, retrain_due_check
from active_learning.services.retrain_requests import MAX_ATTEMPTS, lease_name
from labeling.models import Project
from tests.factories import CaseFactory, ProjectFactory
from workbench.core.leases import lease_acquire, lease_holder
from workbench.core.models import Job, JobKind, JobStatus
from workbench.tick import minute_tick

pytestmark = pytest.mark.django_db


def _retrain_jobs(project: Project) -> list[Job]:
    return list(Job.objects.filter(project=project, kind="retrain").order_by("pk"))


def _manual(project: Project, admin_client, tmp_path: Path | None = None) -> None:
    """The project list's "Retrain now"."""
    admin_client.post(reverse("labeling:project_retrain", args=[project.slug]))


def _import(project: Project, admin_client, tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text("id,text\nm-1,A bakery selling bread.\nm-2,Online casino with slots.\n")
    call_command("import_cases", project.slug, str(path))
    # The import queued an embedding job, which asks for the retrain when its vectors are stored.
    embedding_run(job_id=Job.objects.get(project=project, kind=JobKind.EMBED).pk)


def _queue_low(project: Project, admin_client, tmp_path: Path) -> None:
    """A claim finding the queue low tops it up and, with a champion, asks for a retrain."""
    from labeling.services.queue.claim import _refill

    CaseFactory.create_batch(30, project=project)
    ModelVersion.objects.create(project=project, number=1, status=ModelStatus.CHAMPION)
    _refill(project_id=project.pk)


TRIGGERS = {
    "manual": (_manual, "manual"),
    "import": (_import, "2 texts embedded"),
    "queue low": (_queue_low, "the queue is running low"),
}


def _kill(job: Job, *, settings) -> None:
    """What a worker SIGKILLed mid-retrain leaves: running, lease held, heartbeat gone silent."""
    silent_since = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS * 2)
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, started_at=silent_since, heartbeat_at=silent_since
    )
    assert lease_acquire(
        name=lease_name(job.project_id), holder=f"dead-{job.pk}", seconds=LEASE_SECONDS, job=job
    )


@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_a_killed_retrain_is_requested_again_once(
    trigger: str, admin_client, settings, tmp_path: Path
) -> None:
    project = ProjectFactory(retrain_after_n=1000)  # the label counter never asks here
    start, reason = TRIGGERS[trigger]
    start(project, admin_client, tmp_path)
    [first] = _retrain_jobs(project)
    assert first.params["reason"] == reason
    _kill(first, settings=settings)

    result = minute_tick()

    first.refresh_from_db()
    assert result["reaped"] == [first.pk] and result["retried"] == [first.pk]
    assert first.status == JobStatus.FAILED and first.reaped_at is not None
    assert lease_holder(name=lease_name(project.pk)) is None
    [_, again] = _retrain_jobs(project)
    assert again.status == JobStatus.QUEUED
    assert again.params == {"reason": reason, "attempt": 2, "retry_of": first.pk}
    assert f"requested again as job #{again.pk}" in first.message
    # Once: later ticks neither request it a third time nor start another.
    assert minute_tick()["retried"] == [] and retrain_due_check()["started"] == []
    assert len(_retrain_jobs(project)) == 2


def test_a_retrain_lost_again_and_again_is_given_up_visibly(admin_client, settings) -> None:
    project = ProjectFactory(retrain_after_n=1000)
    _manual(project, admin_client)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        job = _retrain_jobs(project)[-1]
        assert job.params.get("attempt", 1) == attempt and job.status == JobStatus.QUEUED
        _kill(job, settings=settings)
        minute_tick()
    jobs = _retrain_jobs(project)
    assert len(jobs) == MAX_ATTEMPTS, "the bound on attempts did not hold"
    last = jobs[-1]
    assert last.status == JobStatus.FAILED and last.params["handled"] == "given_up"
    assert last.error.startswith(f"GIVEN UP: this retrain was lost {MAX_ATTEMPTS} times")
    minute_tick()
    assert len(_retrain_jobs(project)) == MAX_ATTEMPTS
    # Visible where admins look: the status page's jobs and the project list's retrain cell.
    assert "GIVEN UP" in admin_client.get(reverse("status")).content.decode()
    assert "GIVEN UP" in admin_client.get(reverse("labeling:project_list")).content.decode()
    # An admin's request still goes through, and is retried again if lost.
    _manual(project, admin_client)
    assert _retrain_jobs(project)[-1].status == JobStatus.QUEUED


def test_a_newer_request_stands_in_for_a_lost_one(admin_client, settings) -> None:
    project = ProjectFactory(retrain_after_n=5, labels_since_training=0)
    _manual(project, admin_client)
    [first] = _retrain_jobs(project)
    _kill(first, settings=settings)
    from workbench.core.jobs import job_reap_stale

    job_reap_stale()  # reaped by one tick, which died before it handled the job...
    _manual(project, admin_client)  # ...and an admin asked again meanwhile
    result = minute_tick()
    assert result["superseded"] == [first.pk] and result["retried"] == []
    assert len(_retrain_jobs(project)) == 2
