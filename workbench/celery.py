"""The Celery app: configured from Django settings (CELERY_* names), tasks found in each app.

Also how a worker stops within WORKER_STOP_SECONDS of a SIGTERM (`workbench.core.stopping`):
Celery's warm shutdown alone waits for the running task, a whole retrain, however long.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from billiard.process import current_process
from celery import Celery
from celery.signals import task_prerun, worker_process_init, worker_shutting_down

from workbench.core.stopping import children_signal, die_with_parent, stop_request

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

app = Celery("workbench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_broker_folders() -> None:
    """The filesystem transport needs its folders before the first message (STACK.md §2b)."""
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


ensure_broker_folders()


@worker_process_init.connect
def _limit_threads(**_kwargs: object) -> None:
    """One BLAS/torch thread per worker process by default: 2-thread fits measured 3-30x slower."""
    from django.conf import settings
    from threadpoolctl import threadpool_limits

    threadpool_limits(settings.WORKER_THREADS)
    # A pool child whose worker was SIGKILLed stops too (and hands its job back).
    die_with_parent(signal.SIGTERM)


def _stop_grace() -> float:
    from django.conf import settings

    return float(settings.WORKER_STOP_SECONDS)


@worker_shutting_down.connect
def _stop_running_jobs(**_kwargs: object) -> None:
    """Warm shutdown (MainProcess): ask the running jobs to stop, here and in the pool children.

    Runs inside Celery's signal handler, so only sets flags, starts a thread and sends signals.
    """
    stop_request(grace=_stop_grace())
    children_signal(signal.SIGTERM)


def _child_sigterm(_signum: int, _frame: object) -> None:
    stop_request(grace=max(1.0, _stop_grace() - 5))  # before the parent's watchdog kills us


@task_prerun.connect
def _cooperative_sigterm(**_kwargs: object) -> None:
    """In a prefork child, SIGTERM asks the task to stop instead of raising SystemExit anywhere.

    billiard's handler (set after `worker_process_init`, hence here) raises SystemExit wherever
    the child is; a child that dies holding the pool's result-queue lock leaves its parent's
    warm shutdown waiting for that lock for ever (seen: a demo worker orphaned for 90 minutes).
    """
    if current_process()._name == "MainProcess":  # solo pool: Celery's own handler stays
        return
    with contextlib.suppress(ValueError):  # not the main thread (threads pool): nothing to do
        signal.signal(signal.SIGTERM, _child_sigterm)
