"""A real Celery worker killed in the middle of an export: the job is reaped, run again from
scratch by the minute tick, and no partial file is ever visible under a final name."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from django.db import connection

from labeling.services.exports import ExportOptions
from labeling.services.exports.jobs import case_export_request, export_folder
from tests.conftest import redis_url
from tests.factories import CaseFactory, LabelClassFactory, ProjectFactory
from tests.worker import celery_worker, service_env
from workbench.core.models import Job, JobStatus
from workbench.tick import minute_tick

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def _worker(tmp_path: Path, name: str, **extra: str):
    db = connection.settings_dict
    env = service_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        CELERY_BROKER_URL=redis_url(),
        WORKBENCH_DATA_DIR=str(tmp_path / "data"),
        WORKBENCH_VAR_DIR=str(tmp_path / "var"),
        JOB_HEARTBEAT_SECONDS="1",
        JOB_STALE_SECONDS="5",
        **extra,
    )
    return celery_worker(env, tmp_path / f"{name}.log")


def _wait(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return found


def test_a_worker_killed_mid_export_leaves_no_partial_file_and_the_export_reruns(
    settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    settings.WORKBENCH_DATA_DIR = tmp_path / "data"
    settings.JOB_HEARTBEAT_SECONDS = 1
    settings.JOB_STALE_SECONDS = 5
    project = ProjectFactory(slug="killed")
    label = LabelClassFactory(project=project, name="legit")
    CaseFactory.create_batch(30, project=project, given_label=label)
    with django_capture_on_commit_callbacks(execute=True):
        job = case_export_request(project=project, fmt="csv", options=ExportOptions())
    folder = export_folder(job.pk)
    with _worker(tmp_path, "doomed", WORKBENCH_FAULTS="export=60") as proc:
        # The first page is written, under a hidden temporary name, when the worker stalls.
        partial = _wait(
            lambda: list(folder.glob(".*.partial")) if folder.exists() else [],
            "the export never started writing",
        )
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == []
    assert partial[0].exists()  # what the kill left: hidden, never served
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.result == {}

    def rerun() -> bool:
        minute_tick()
        return Job.objects.get(pk=job.pk).status == JobStatus.QUEUED

    _wait(rerun, "the stale export was not reaped and queued again", timeout=30)
    assert not folder.exists()  # the partial file went with the failed run
    with _worker(tmp_path, "second"):
        _wait(
            lambda: Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED,
            f"the rerun did not finish: {Job.objects.get(pk=job.pk).message}",
        )
    job.refresh_from_db()
    assert job.params["attempt"] == 2 and job.result["rows"] == 30
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*job.result["files"], job.result["manifest"]]
    )
    lines = (folder / job.result["files"][0]).read_text().splitlines()
    assert len(lines) == 31  # header + every case, written once
