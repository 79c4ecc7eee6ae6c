"""The fault suite's servers and processes: throwaway PostgreSQL and Redis, gunicorn, workers.

Session fixtures start one PostgreSQL cluster and one Redis server of the run's own
(tests/faults/servers.py; never the machine's shared ones) and point this process at them before
pytest-django creates the test database there: its ORM, and Celery's producer for anything it
sends. The web server and workers are subprocesses given the same servers through the
environment (`DATABASE_URL`, `CELERY_BROKER_URL`), so a test can stop, restart or fill what they
depend on while they run.

The suite runs in a pytest session of its own (`make faults`; plain `pytest` deselects it): a
session that set up the shared test database first cannot move it, and `fault_env` refuses.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.http_analysts import free_port, start_gunicorn, stop_gunicorn
from tests.faults.servers import PostgresServer, RedisServer
from tests.worker import celery_worker, service_env

TEST_DB = "test_faults"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of this run; tests may `stop`, `start` or `restart` it."""
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server of this run; tests may `stop`, `start` or `restart` it."""
    server = RedisServer()
    server.start()
    yield server
    server.remove()


def _point_django_at(url: str) -> None:
    from django.conf import settings
    from django.db import connections

    from workbench.settings import database_config

    connections.close_all()
    config = database_config(f"{url}/faults")
    config["CONN_MAX_AGE"] = 0  # this process survives the restarts the tests make
    config["TEST"] = {"NAME": TEST_DB}
    db = settings.DATABASES["default"]
    db.clear()
    db.update(config)
    connections.configure_settings(settings.DATABASES)  # Django's defaults, in place
    with contextlib.suppress(AttributeError):  # no connection made for the old settings
        del connections["default"]


def _point_celery_at(url: str) -> None:
    from django.conf import settings

    from workbench.celery import app
    from workbench.settings import broker_transport_options

    options = broker_transport_options(
        url, folder=Path(settings.BROKER_DIR), key_prefix=os.environ.get("BROKER_KEY_PREFIX", "")
    )
    # Celery's broker_url prefers the environment's CELERY_BROKER_URL to its configuration.
    os.environ["CELERY_BROKER_URL"] = url
    os.environ.pop("CELERY_BROKER_WRITE_URL", None)
    os.environ["REDIS_URL"] = url
    settings.CELERY_BROKER_URL = url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    app.conf.broker_url = url
    app.conf.broker_transport_options = options
    if app._pool is not None:  # nothing sent yet in a faults run; be safe all the same
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    used = app.connection_for_write().as_uri()
    assert used.endswith(url.split("@")[-1].split("//")[-1]), f"Celery still sends to {used}"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(pg_server: PostgresServer, redis_server: RedisServer) -> None:
    """pytest-django's hook: the test database goes on this run's server, not DATABASE_URL's."""
    _point_django_at(pg_server.url)
    _point_celery_at(redis_server.url)


@pytest.fixture(scope="session")
def fault_env(
    django_db_setup, pg_server: PostgresServer, redis_server: RedisServer, tmp_path_factory
) -> dict[str, str]:
    """The environment of the app processes: this run's servers, test heartbeat settings."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    assert (db["HOST"], int(db["PORT"] or 0)) == ("127.0.0.1", pg_server.port), (
        "the test database is not on the fault suite's own server: run it alone (make faults)"
    )
    var = tmp_path_factory.mktemp("var")
    (var / "static").mkdir()  # whitenoise's root; the pages' files come from the finders
    return service_env(
        SECRET_KEY=settings.SECRET_KEY,  # the sessions this process makes are theirs too
        DATABASE_URL=f"{pg_server.url}/{TEST_DB}",
        CELERY_BROKER_URL=redis_server.url,
        REDIS_URL=None,
        TEST_DATABASE_NAME=None,
        WORKBENCH_MODE="demo",
        DEBUG="false",
        WORKBENCH_VAR_DIR=str(var),
        WORKBENCH_DATA_DIR=str(var / "data"),
        STATIC_ROOT=str(var / "static"),
        JOB_HEARTBEAT_SECONDS="1",
        JOB_STALE_SECONDS="5",  # the reaper's patience, 60 s in production
        CONN_MAX_AGE="60",
        WORKBENCH_FAULTS=None,
    )


@pytest.fixture(scope="session")
def web(fault_env: dict[str, str], tmp_path_factory) -> Iterator[int]:
    """gunicorn on this run's servers (3 workers, as the benchmark); yields its port."""
    port = free_port()
    logs = tmp_path_factory.mktemp("web")
    server = start_gunicorn(
        port,
        env=fault_env,
        workers=3,
        access_log=str(logs / "access.log"),
        output=logs / "gunicorn.log",
    )
    yield port
    stop_gunicorn(server)


@pytest.fixture
def worker(fault_env: dict[str, str], tmp_path: Path):
    """A factory of Celery workers on this run's servers: `with worker("name", **env) as proc`."""

    def start(name: str, *, pool: str = "solo", **extra: str):
        return celery_worker({**fault_env, **extra}, tmp_path / f"{name}.log", pool=pool)

    return start


N_CASES = 600
SEED = 7


@pytest.fixture(scope="session")
def generated_vectors():
    """MiniLM vectors of the generated merchants' texts, keyed by content hash (once a run)."""
    from active_learning.ml.embeddings import SentenceTransformerEncoder
    from active_learning.ml.hashing import content_hash
    from labeling.synthetic import generate

    texts = [r.text for r in generate(N_CASES, seed=SEED)]
    vectors = SentenceTransformerEncoder(num_threads=1).encode(texts)
    return {content_hash(t): v for t, v in zip(texts, vectors, strict=True)}


@pytest.fixture
def generated(generated_vectors):
    """A factory of projects of generated merchants with their embeddings stored, due for a
    retrain (labels since training = N)."""
    from active_learning.models import Embedding
    from active_learning.services.embeddings import model_name_current
    from labeling.models import Project
    from tests.pipeline import generated_project

    def make(**settings):
        project = generated_project(n=N_CASES, seed=SEED, **settings)
        Embedding.objects.bulk_create(
            Embedding(
                model_name=model_name_current(),
                content_hash=h,
                dim=v.shape[0],
                vector=v.astype("<f4").tobytes(),
            )
            for h, v in generated_vectors.items()
        )
        Project.objects.filter(pk=project.pk).update(labels_since_training=project.retrain_after_n)
        return project

    return make


def wait_for(predicate, *, timeout: float, what: str, every: float = 0.3):
    """Poll `predicate` until it returns a true value (returned); fail after `timeout` s."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@pytest.fixture
def crowd_project(db):
    """A factory: a project with `cases` open queue items, two classes and `analysts` logged-in
    analysts; returns (project, label to answer with, session keys). No retrain can become due:
    the suite measures the site, not the pipeline."""
    from active_learning.ml.hashing import content_hash
    from bench.http_analysts import login_sessions
    from labeling.models import Case
    from labeling.services.queue.fill import queue_fill_random
    from tests.factories import AnalystFactory, LabelClassFactory, ProjectFactory

    def make(*, cases: int, analysts: int):
        project = ProjectFactory(retrain_after_n=1_000_000_000)
        label = LabelClassFactory(project=project)
        LabelClassFactory(project=project)
        texts = [
            f"Merchant {i} sells handmade ceramic mugs and prints online." for i in range(cases)
        ]
        Case.objects.bulk_create(
            Case(project=project, external_id=f"M{i:07d}", text=t, content_hash=content_hash(t))
            for i, t in enumerate(texts)
        )
        assert queue_fill_random(project=project, cases=cases, seed=1) == cases
        users = [AnalystFactory() for _ in range(analysts)]
        return project, label, login_sessions(users, project)

    return make


def stored_submissions(submissions) -> set[str]:
    """Which of these submission ids have an annotation in the database."""
    from labeling.models import Annotation

    ids = list(submissions)
    return {
        str(s)
        for s in Annotation.objects.filter(submission_id__in=ids).values_list(
            "submission_id", flat=True
        )
    }
