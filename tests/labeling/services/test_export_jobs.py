"""Exports as jobs: run by a worker into the data directory, rerun from scratch after a kill
with no partial file ever visible, expired by the minute tick."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from labeling.services.exports import ExportOptions
from labeling.services.exports.jobs import (
    EXPORT_JOB_KIND,
    MAX_ATTEMPTS,
    case_export_request,
    case_export_run,
    export_download_path,
    export_folder,
)
from tests.factories import CaseFactory, LabelClassFactory, ProjectFactory
from workbench.core.models import Job, JobStatus
from workbench.tick import minute_tick

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.WORKBENCH_DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def sent():
    """The task's messages, captured instead of sent to a broker."""
    with mock.patch("labeling.tasks.case_export_task.apply_async") as apply_async:
        apply_async.return_value = mock.Mock(id="task-id")
        yield apply_async


@pytest.fixture
def project():
    project = ProjectFactory(slug="shop")
    label = LabelClassFactory(project=project, name="legit")
    CaseFactory.create_batch(5, project=project, given_label=label)
    return project


def _request(project, django_capture_on_commit_callbacks, fmt="csv", **options) -> Job:
    with django_capture_on_commit_callbacks(execute=True):
        return case_export_request(project=project, fmt=fmt, options=ExportOptions(**options))


def _visible(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_a_requested_export_runs_as_a_job(
    project, data_dir, sent, django_capture_on_commit_callbacks
) -> None:
    """The job is sent on commit; the worker writes the file and the manifest, then the job
    names them, with the row count and when they expire."""
    job = _request(project, django_capture_on_commit_callbacks, "parquet", provenance=True)
    assert sent.call_args.kwargs["args"] == [job.pk]
    result = case_export_run(job_id=job.pk)
    assert result is not None and result.rows == 5
    job.refresh_from_db()
    assert (job.status, job.progress, job.kind) == (JobStatus.SUCCEEDED, 1.0, EXPORT_JOB_KIND)
    folder = export_folder(job.pk)
    assert folder.parent == data_dir / "exports"
    [name] = job.result["files"]
    assert name.startswith("shop-") and name.endswith(".parquet")
    assert _visible(folder) == sorted([name, job.result["manifest"]])
    assert job.result["rows"] == 5 and job.result["expires_at"]
    assert export_download_path(job=job, name=name) == folder / name
    assert export_download_path(job=job, name="../../etc/passwd") is None
    assert case_export_run(job_id=job.pk) is None  # a second message changes nothing


def test_a_killed_export_reruns_from_scratch(
    project, data_dir, sent, settings, django_capture_on_commit_callbacks
) -> None:
    """A worker killed mid-export leaves a hidden partial file and a silent job: the minute
    tick reaps the job and runs it again, as the same job, from an empty folder."""
    job = _request(project, django_capture_on_commit_callbacks)
    folder = export_folder(job.pk)
    folder.mkdir(parents=True)
    (folder / ".shop-x.csv.0123.partial").write_text("external_id,text\nhalf")
    silent = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS * 2)
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, started_at=silent, heartbeat_at=silent
    )
    assert export_download_path(job=Job.objects.get(pk=job.pk), name="shop-x.csv") is None
    sent.reset_mock()
    result = minute_tick()
    assert result["exports_rerun"] == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.params["attempt"], job.reaped_at) == (JobStatus.QUEUED, 2, None)
    assert not folder.exists()  # the partial file is gone
    assert sent.call_args.kwargs["args"] == [job.pk]
    case_export_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert _visible(folder) == sorted(job.result["files"] + [job.result["manifest"]])
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_an_export_killed_every_time_is_given_up(
    project, data_dir, sent, settings, django_capture_on_commit_callbacks
) -> None:
    job = _request(project, django_capture_on_commit_callbacks)
    silent = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS * 2)
    for _ in range(MAX_ATTEMPTS):
        Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=silent)
        minute_tick()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.params["handled"] == "given_up"
    assert "start the export again" in job.message


def test_a_lost_message_is_resent(project, data_dir, sent) -> None:
    job = Job.objects.create(
        kind=EXPORT_JOB_KIND, project=project, params={"format": "csv", "options": {}}
    )
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert minute_tick()["exports_resent"] == [job.pk]


def test_files_expire(
    project, data_dir, sent, settings, django_capture_on_commit_callbacks
) -> None:
    """After EXPORT_EXPIRE_HOURS the tick deletes the files; the job says they expired. Folders
    of failed runs go too; a running export's folder stays."""
    settings.EXPORT_EXPIRE_HOURS = 1
    job = _request(project, django_capture_on_commit_callbacks)
    case_export_run(job_id=job.pk)
    failed = Job.objects.create(kind=EXPORT_JOB_KIND, project=project, status=JobStatus.FAILED)
    export_folder(failed.pk).mkdir(parents=True)
    running = Job.objects.create(
        kind=EXPORT_JOB_KIND, project=project, status=JobStatus.RUNNING, heartbeat_at=timezone.now()
    )
    export_folder(running.pk).mkdir(parents=True)
    assert minute_tick()["exports_expired"] == []
    assert export_folder(job.pk).exists() and not export_folder(failed.pk).exists()
    Job.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(hours=2))
    assert minute_tick()["exports_expired"] == [job.pk]
    job.refresh_from_db()
    assert job.result["expired"] is True and not export_folder(job.pk).exists()
    assert export_download_path(job=job, name=job.result["files"][0]) is None
    assert export_folder(running.pk).exists()
