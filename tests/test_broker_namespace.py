"""The test run's Celery messages go to a broker namespace of its own, never to the repository's
var/broker or to unprefixed Redis keys, where a running demo or another test run would read them."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings

from tests.conftest import run_database_name
from workbench.celery import app


def _send(queue: str) -> None:
    app.send_task("workbench.ping", args=["namespace check"], queue=queue)


def test_a_message_lands_in_this_runs_namespace_only() -> None:
    queue = f"ns-check-{uuid.uuid4().hex}"
    options = app.conf.broker_transport_options
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        ours = Path(options["data_folder_out"])
        shared = Path(settings.BROKER_DIR) / "queue"
        assert not ours.is_relative_to(settings.VAR_DIR), ours
        _send(queue)
        sent = list(ours.glob(f"*.{queue}.msg"))
        try:
            assert len(sent) == 1
            assert not list(shared.glob(f"*.{queue}.msg"))
        finally:
            for path in sent:
                path.unlink()
    else:
        import redis

        prefix = f"{run_database_name()}:"
        assert options["global_keyprefix"] == prefix
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        _send(queue)
        try:
            assert client.llen(prefix + queue) == 1
            assert client.llen(queue) == 0
        finally:
            for key in client.scan_iter(match=f"*{queue}*"):
                client.delete(key)
