"""Shared fixtures and the rule for service-backed tests.

Tests marked `postgres` or `redis` need that service. Locally they skip when it is not
configured; with CI=true a skip would hide a broken setup, so they fail instead.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# One BLAS/OpenMP thread, as in the workers: with torch loaded beside scikit-learn, 2-thread
# fits on these 2-core machines ran 10-80x slower than 1-thread ones (measured).
from threadpoolctl import threadpool_limits

threadpool_limits(1)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: service-backed tests must run, not skip)")
    pytest.skip(reason)


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
