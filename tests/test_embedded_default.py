"""The runtime works end to end: migrate, then a task through a real worker and back.

Once on the embedded default (SQLite + kombu's filesystem broker, all in subprocesses), and
once on PostgreSQL + Redis, the production shape.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.conftest import redis_url
from tests.worker import celery_worker, manage, service_env

PING = (
    "import json; from workbench.tasks import ping; "
    "print('RESULT', json.dumps(ping.delay('{token}').get(timeout=60)))"
)


@pytest.mark.worker
def test_embedded_default_round_trip(tmp_path: Path) -> None:
    env = service_env(
        DATABASE_URL=None,
        CELERY_BROKER_URL=None,
        WORKBENCH_MODE="demo",
        WORKBENCH_VAR_DIR=str(tmp_path / "var"),
    )
    manage("migrate", "--no-input", env=env)
    assert (tmp_path / "var" / "db.sqlite3").exists()
    with celery_worker(env, tmp_path / "worker.log"):
        token = uuid.uuid4().hex
        out = manage("shell", "-c", PING.format(token=token), env=env).stdout
    result = json.loads(out.split("RESULT", 1)[1])
    assert result == {"token": token, "vendor": "sqlite", "projects": 0}
    assert (tmp_path / "var" / "broker" / "queue").is_dir()


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_postgres_redis_round_trip(tmp_path: Path, settings) -> None:
    from django.db import connection

    from tests.factories import ProjectFactory
    from workbench.tasks import ping

    ProjectFactory()
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = service_env(
        DATABASE_URL=url, CELERY_BROKER_URL=redis_url(), WORKBENCH_VAR_DIR=str(tmp_path / "var")
    )
    with celery_worker(env, tmp_path / "worker.log"):
        token = uuid.uuid4().hex
        result = ping.delay(token).get(timeout=60)
    assert result == {"token": token, "vendor": "postgresql", "projects": 1}
