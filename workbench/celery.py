"""The Celery app: configured from Django settings (CELERY_* names), tasks found in each app."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_process_init

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
