"""Shared fixtures, the rule for service-backed tests, and the test run's own broker.

Tests marked `postgres` or `redis` need that service; without it they skip, and with CI=true
every skip fails the run instead (tests/ci_rules.py, with its allow-list). The run sends its
Celery messages to a namespace of its own (a temporary broker folder, or on Redis a key prefix
named after the test database), so parallel runs and a running demo never read each other's.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# One BLAS/OpenMP thread, as in the workers: with torch loaded beside scikit-learn, 2-thread
# fits on these 2-core machines ran 10-80x slower than 1-thread ones (measured).
from threadpoolctl import threadpool_limits

threadpool_limits(1)

pytest_plugins = ["tests.ci_rules"]


@functools.cache
def run_database_name() -> str:
    """The database pytest-django creates (Django's rule: TEST NAME, else test_<NAME>).

    Cached from the first call, at import: once the test database exists Django rewrites NAME
    to it, and the rule applied again would give test_test_<NAME>."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    return db["TEST"].get("NAME") or f"test_{Path(str(db['NAME'])).name}"


def _broker_namespace() -> Path | None:
    """Point this process, and the workers and commands tests start (through the environment),
    at a broker namespace of this run; returns the temporary broker folder to remove, if any."""
    from django.conf import settings

    from workbench.celery import app, ensure_broker_folders
    from workbench.settings import broker_transport_options

    folder = None
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        folder = Path(tempfile.mkdtemp(prefix="workbench-test-broker-"))
    prefix = f"{run_database_name()}:"
    os.environ["BROKER_KEY_PREFIX"] = prefix
    options = broker_transport_options(
        settings.CELERY_BROKER_URL, folder=folder or settings.BROKER_DIR, key_prefix=prefix
    )
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    app.conf.broker_transport_options = options
    ensure_broker_folders()
    return folder


_BROKER_FOLDER = _broker_namespace()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _BROKER_FOLDER is not None:
        shutil.rmtree(_BROKER_FOLDER, ignore_errors=True)


def _missing(reason: str) -> None:
    pytest.skip(f"{reason} (with CI=true, service-backed tests must run, not skip)")


def redis_url() -> str | None:
    """The Redis URL tests may use: REDIS_URL, else CELERY_BROKER_URL when it is Redis."""
    url = os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith("redis://") else None


@pytest.fixture(autouse=True)
def _service_markers(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres"):
        from django.db import connection

        if connection.vendor != "postgresql":
            _missing("needs PostgreSQL: set DATABASE_URL=postgres://...")
    if request.node.get_closest_marker("redis"):
        url = redis_url()
        if url is None:
            _missing("needs Redis: set REDIS_URL or CELERY_BROKER_URL=redis://...")
        else:
            import redis

            try:
                redis.Redis.from_url(url, socket_connect_timeout=2).ping()
            except redis.RedisError as exc:
                _missing(f"Redis at {url} does not answer: {exc}")


@pytest.fixture
def project(db):
    from tests.factories import ProjectFactory

    return ProjectFactory()
