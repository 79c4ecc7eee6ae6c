"""What starts a retrain: the label counter (checked each minute and on commit), the schedule,
an admin, an import, and a queue running low once a model exists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from active_learning.models import ModelStatus, ModelVersion
from active_learning.services.retrain import (
    lease_name,
    retrain_due_check,
    retrain_project,
    retrain_start,
)
from active_learning.services.schedules import NIGHTLY_RETRAIN, PIPELINE_TICK, schedules_ensure
from labeling.models import Project, QueueItem, QueueStatus
from labeling.services.annotations import annotation_submit
from labeling.services.imports import case_import
from tests.factories import CaseFactory, LabelClassFactory, ProjectFactory, UserFactory
from workbench.core.leases import lease_acquire, lease_holder
from workbench.core.models import Job, JobStatus


def _retrain_jobs(project) -> list[Job]:
    return list(Job.objects.filter(project=project, kind="retrain"))


@pytest.mark.django_db
def test_schedules_are_created_once(settings) -> None:
    settings.RETRAIN_CRON = "30 3 * * *"
    schedules_ensure()
    schedules_ensure()
    tick = PeriodicTask.objects.get(name=PIPELINE_TICK)
    nightly = PeriodicTask.objects.get(name=NIGHTLY_RETRAIN)
    assert tick.task == "workbench.minute_tick" and tick.interval.every == 60
    assert nightly.task == "active_learning.retrain_all"
    assert (nightly.crontab.minute, nightly.crontab.hour) == ("30", "3")
    assert PeriodicTask.objects.filter(name__in=[PIPELINE_TICK, NIGHTLY_RETRAIN]).count() == 2


@pytest.mark.django_db
def test_a_bad_cron_is_refused(settings) -> None:
    settings.RETRAIN_CRON = "every night"
    with pytest.raises(ValueError, match="RETRAIN_CRON must have five fields"):
        schedules_ensure()


@pytest.mark.django_db
def test_an_empty_retrain_cron_schedules_no_full_retrain(settings) -> None:
    """RETRAIN_CRON empty: the minute tick is scheduled, no full retrain of any project is
    (the nightly row the migration made stays, disabled, for an admin to edit)."""
    settings.RETRAIN_CRON = ""
    assert [task.name for task in schedules_ensure()] == [PIPELINE_TICK]
    enabled = PeriodicTask.objects.filter(enabled=True).values_list("task", flat=True)
    assert list(enabled) == ["workbench.minute_tick"]


def test_an_empty_retrain_cron_in_the_environment_stays_empty(tmp_path: Path) -> None:
    """The settings read `RETRAIN_CRON=` as empty, not as the nightly default."""
    code = "from django.conf import settings; import json; print(json.dumps(settings.RETRAIN_CRON))"
    env = {**os.environ, "RETRAIN_CRON": "", "WORKBENCH_VAR_DIR": str(tmp_path)}
    env["DJANGO_SETTINGS_MODULE"] = "workbench.settings"
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"],
                         cwd=root, env=env, capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ""


@pytest.mark.django_db
def test_a_retrain_is_refused_the_lease_while_another_runs() -> None:
    """A second retrain of a project (a resent or duplicated job) that finds the lease held is
    cancelled without touching anything: no model version, the label counter still due, the
    running retrain's lease still its own."""
    project = ProjectFactory(retrain_after_n=5, labels_since_training=7)
    running = Job.objects.create(kind="retrain", project=project, status=JobStatus.RUNNING)
    assert lease_acquire(name=lease_name(project.pk), holder="the first", seconds=600, job=running)
    second = Job.objects.create(kind="retrain", project=project, status=JobStatus.QUEUED)
    assert retrain_project(job=second) == {"skipped": "another retrain is running"}
    second.refresh_from_db()
    assert second.status == JobStatus.CANCELLED
    assert second.message == "another retrain of this project is running"
    assert lease_holder(name=lease_name(project.pk)) == "the first"
    assert not ModelVersion.objects.filter(project=project).exists()
    assert Project.objects.get(pk=project.pk).labels_since_training == 7
    assert Job.objects.get(pk=running.pk).status == JobStatus.RUNNING


@pytest.mark.django_db
def test_an_import_with_nothing_new_queues_no_embedding_and_no_retrain(
    tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    """New cases queue one embedding job (test_embedding_jobs: it then asks for the retrain);
    re-importing the same file with nothing new or changed queues nothing."""
    project = ProjectFactory()
    path = tmp_path / "cases.csv"
    path.write_text("id,text\nm1,Handmade mugs.\nm2,Online casino.\nm3,Espresso bar.\n")
    with django_capture_on_commit_callbacks(execute=True):
        report = case_import(project=project, path=path)
    assert report.ok and report.created == 3
    [job] = Job.objects.filter(project=project, kind="embed")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=True):
        again = case_import(project=project, path=path, update=True)
    assert again.ok and again.created == 0 and not again.changed_case_ids
    assert Job.objects.filter(project=project).count() == 1


@pytest.mark.django_db
def test_due_check_starts_one_retrain_per_due_project() -> None:
    due = ProjectFactory(retrain_after_n=5, labels_since_training=7)
    ProjectFactory(retrain_after_n=5, labels_since_training=4)
    result = retrain_due_check()
    assert [Job.objects.get(pk=pk).project for pk in result["started"]] == [due]
    assert retrain_due_check()["started"] == []  # one is already queued


@pytest.mark.django_db(transaction=True)
def test_the_label_that_passes_n_starts_a_retrain_on_commit() -> None:
    project = ProjectFactory(retrain_after_n=2)
    label = LabelClassFactory(project=project)
    analyst = UserFactory()
    for i in range(2):
        case = CaseFactory(project=project)
        assert _retrain_jobs(project) == [], f"started after {i} labels"
        annotation_submit(
            item_or_case=case, analyst=analyst, submission_id=uuid.uuid4(), label=label
        )
    jobs = _retrain_jobs(project)
    assert len(jobs) == 1 and jobs[0].params["reason"] == "labels since training passed N"


@pytest.mark.django_db
def test_admin_retrain_now_queues_one_job(admin_client) -> None:
    project = ProjectFactory()
    url = reverse("admin:labeling_project_changelist")
    payload = {"action": "retrain_now", "_selected_action": [project.pk]}
    admin_client.post(url, payload)
    admin_client.post(url, payload)
    jobs = _retrain_jobs(project)
    assert len(jobs) == 1 and jobs[0].status == JobStatus.QUEUED
    assert jobs[0].params["reason"].startswith("manual, by admin")


@pytest.mark.django_db
def test_admin_can_roll_back_to_an_older_version(admin_client) -> None:
    project = ProjectFactory()
    old = ModelVersion.objects.create(project=project, number=1, status=ModelStatus.RETIRED)
    new = ModelVersion.objects.create(project=project, number=2, status=ModelStatus.CHAMPION)
    url = reverse("admin:active_learning_modelversion_changelist")
    admin_client.post(url, {"action": "promote", "_selected_action": [old.pk]})
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, new.status) == (ModelStatus.CHAMPION, ModelStatus.RETIRED)
    assert "by hand by admin" in old.decision_reason


@pytest.mark.django_db
def test_retrain_start_is_idempotent_while_pending() -> None:
    project = ProjectFactory()
    assert retrain_start(project=project, reason="a") is not None
    assert retrain_start(project=project, reason="b") is None


@pytest.mark.django_db
def test_queue_running_low_asks_the_model_once_one_exists() -> None:
    from labeling.services.queue.claim import _refill

    project = ProjectFactory(batch_size=5)
    CaseFactory.create_batch(30, project=project)
    assert _refill(project_id=project.pk) > 0  # no model: random fill
    assert _retrain_jobs(project) == []
    ModelVersion.objects.create(project=project, number=1, status=ModelStatus.CHAMPION)
    assert _refill(project_id=project.pk) == 0  # open items remain: the model refills
    assert len(_retrain_jobs(project)) == 1
    QueueItem.objects.filter(project=project).update(status=QueueStatus.CANCELLED)
    assert _refill(project_id=project.pk) > 0  # nothing left at all: random stopgap
