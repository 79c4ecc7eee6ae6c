"""A worker asked to stop (SIGTERM) mid-retrain exits within 30 s and hands its retrain back.

Real Celery worker processes on PostgreSQL and Redis. Celery's warm shutdown alone waits for the
running task (a whole retrain); the fault points hold a step long enough to stop it there:
`embed` sleeps in every chunk (the chain may leave between chunks), `train` sleeps inside the
fit (a step that never checks: the watchdog must abandon it).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from active_learning.models import Embedding, ModelStatus, ModelVersion
from active_learning.services.retrain import retrain_due_check
from tests.active_learning.test_pipeline_worker import (  # noqa: F401 - fixtures used here
    _due,
    _wait_job,
    generated_vectors,
    pipeline,
)
from workbench.core.jobs import MSG_HANDED_BACK
from workbench.core.models import Job, JobStatus, Lease

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

STOP_BOUND = 30.0  # seconds from SIGTERM to exit, at any point of a retrain (issue 18)


def _reached(point: str, job_id: int, project) -> bool:
    if point == "train":
        return ModelVersion.objects.filter(project=project, status=ModelStatus.TRAINING).exists()
    job = Job.objects.get(pk=job_id)
    return job.status == JobStatus.RUNNING and job.message.startswith("embed:")


@pytest.mark.parametrize(
    ("point", "pool"),
    [("embed", "prefork"), ("train", "prefork"), ("train", "solo")],
)
def test_sigterm_mid_retrain_stops_worker_and_hands_job_back(
    pipeline,  # noqa: F811 - the imported fixture
    point,
    pool,
) -> None:
    project = pipeline(given_label_weight=1.0, retrain_after_n=50)
    if point == "embed":
        Embedding.objects.all().delete()  # 1,000 texts to embed: two chunks
    _due(project)
    job_id = retrain_due_check()["started"][0]
    faults = "embed=4" if point == "embed" else "train=300"
    with pipeline.worker(f"stopped-{point}", pool=pool, WORKBENCH_FAULTS=faults) as proc:
        deadline = time.monotonic() + 120
        while not _reached(point, job_id, project):
            assert time.monotonic() < deadline, Job.objects.get(pk=job_id).message
            time.sleep(0.2)
        time.sleep(1)  # inside the step
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)  # the worker's main process only, as `kill <pid>`
        while proc.poll() is None:
            assert time.monotonic() - sent < STOP_BOUND, f"worker alive {STOP_BOUND:.0f} s on"
            time.sleep(0.2)
        assert not [pid for pid in _group(proc.pid)], "a pool child outlived its worker"

    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.QUEUED and job.message == MSG_HANDED_BACK, job.error
    assert not Lease.objects.filter(name=f"retrain:{project.pk}").exists()
    assert not ModelVersion.objects.filter(project=project, status=ModelStatus.CHAMPION).exists()

    # Handed back, not lost: the next worker runs the same job to the end.
    with pipeline.worker("next"):
        Job.objects.filter(pk=job_id).update(created_at=job.created_at.replace(year=2000))
        retrain_due_check()  # resends the queued job whatever became of its message
        _wait_job(job_id)
    assert ModelVersion.objects.filter(project=project, status=ModelStatus.CHAMPION).exists()
    assert Job.objects.filter(project=project, kind="retrain").count() == 1


def _group(pgid: int) -> list[int]:
    """Live processes of the worker's process group (it runs in a session of its own)."""
    alive = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(entry.name))
    return alive
