"""A worker SIGKILLed mid-retrain: the retrain completes later, each step done once.

Throwaway PostgreSQL and Redis; the worker is killed inside the fit (the `train` fault point
holds it there). A second worker then receives the minute tick through the broker, as beat
would send it, with `JOB_STALE_SECONDS=5`: the tick reaps the silent job, requests the retrain
again, and the second worker runs it to the end.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.db.models import Count

from active_learning.models import ModelStatus, ModelVersion, Prediction
from active_learning.services.retrain import retrain_due_check
from labeling.models import Case, Project, QueueItem, QueueStatus
from tests.faults.conftest import wait_for
from workbench.core.models import Job, JobStatus, Lease
from workbench.tasks import minute_tick

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_retrain_killed_mid_fit_completes_later_without_lost_or_repeated_steps(
    generated, worker
) -> None:
    project = generated(given_label_weight=1.0, retrain_after_n=50)
    first = retrain_due_check()["started"]
    assert len(first) == 1
    killed_job = first[0]

    with worker("doomed", WORKBENCH_FAULTS="train=120") as proc:
        wait_for(
            ModelVersion.objects.filter(project=project, status=ModelStatus.TRAINING).exists,
            timeout=90,
            what="the retrain to reach its fit",
        )
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert Job.objects.get(pk=killed_job).status == JobStatus.RUNNING  # nobody knows yet

    with worker("rescuer"):
        last_tick = 0.0

        def rerun_finished() -> Job | None:
            nonlocal last_tick
            if time.monotonic() - last_tick > 2:  # the tick, sent as beat sends it
                minute_tick.apply_async()
                last_tick = time.monotonic()
            done = Job.objects.filter(
                project=project,
                kind="retrain",
                pk__gt=killed_job,
                status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED],
            ).first()
            return done

        rerun = wait_for(rerun_finished, timeout=120, what="the retrain to be rerun", every=0.5)
    assert rerun.status == JobStatus.SUCCEEDED, rerun.error

    killed = Job.objects.get(pk=killed_job)
    assert killed.status == JobStatus.FAILED and killed.reaped_at is not None, killed.error
    assert rerun.params.get("retry_of") == killed_job
    # Exactly one rerun: no second request for the same labels, nothing left queued.
    retrains = Job.objects.filter(project=project, kind="retrain")
    assert sorted(retrains.values_list("pk", flat=True)) == [killed_job, rerun.pk]
    assert not Lease.objects.filter(name=f"retrain:{project.pk}").exists()

    # One model came of it: the killed fit's version failed, the rerun's is the champion.
    versions = dict(ModelVersion.objects.filter(project=project).values_list("number", "status"))
    assert versions == {1: ModelStatus.FAILED, 2: ModelStatus.CHAMPION}, versions
    champion = ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION)

    # Every case scored once, by the champion only.
    n_cases = Case.objects.filter(project=project).count()
    assert Prediction.objects.filter(model_version=champion).count() == n_cases
    assert (
        not Prediction.objects.filter(model_version__project=project)
        .exclude(model_version=champion)
        .exists()
    )
    # The queue was rebuilt once: no case holds two open items for one slot.
    doubled = (
        QueueItem.objects.filter(project=project, status=QueueStatus.OPEN)
        .values("case_id", "slot")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not doubled.exists()
    # The labels were consumed once, by the run that finished.
    assert Project.objects.get(pk=project.pk).labels_since_training == 0
