"""The minute tick and the nightly retrain exist in every deployment (migration, beat start),
keep admins' edits, follow RETRAIN_CRON (empty: none); the status page fails when beat is silent.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from active_learning.services.schedules import (
    NIGHTLY_RETRAIN,
    NIGHTLY_TASK,
    PIPELINE_TICK,
    schedules_ensure,
)
from tests.worker import ROOT, service_env
from workbench.core.models import Heartbeat
from workbench.health import check_beat
from workbench.tick import minute_tick


def _task(name: str) -> PeriodicTask:
    return PeriodicTask.objects.select_related("interval", "crontab").get(name=name)


def _as_migrate_leaves_them() -> None:
    """The rows as migration 0010 writes them. The test database was built by the migrations,
    but a transactional test before this one may have flushed every table: run the migration's
    own function (with the migration state's models) on an empty schedule table."""
    import importlib

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    PeriodicTask.objects.all().delete()
    key = ("active_learning", "0010_periodic_tasks")
    state = MigrationLoader(connection).project_state(key)
    importlib.import_module("active_learning.migrations.0010_periodic_tasks").ensure(
        state.apps, None
    )


@pytest.mark.django_db
def test_migrate_alone_installs_the_tick_and_the_nightly_retrain() -> None:
    """What `migrate` alone leaves: nothing here calls schedules_ensure."""
    _as_migrate_leaves_them()
    tick, nightly = _task(PIPELINE_TICK), _task(NIGHTLY_RETRAIN)
    assert tick.enabled and tick.task == "workbench.minute_tick"
    assert (tick.interval.every, tick.interval.period) == (60, "seconds")
    assert nightly.enabled and nightly.task == NIGHTLY_TASK
    cron = nightly.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "0",
        "2",
        "*",
        "*",
        "*",
    )


@pytest.mark.django_db
def test_ensure_is_idempotent_and_keeps_admins_edits(settings) -> None:
    settings.RETRAIN_CRON = "0 2 * * *"
    schedules_ensure()
    # An admin slows the tick and moves the nightly retrain (Periodic tasks in the admin).
    tick, nightly = _task(PIPELINE_TICK), _task(NIGHTLY_RETRAIN)
    tick.interval, _ = IntervalSchedule.objects.get_or_create(every=120, period="seconds")
    tick.save()
    nightly.crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="15", hour="4", timezone=settings.TIME_ZONE
    )
    nightly.save()
    for _ in range(2):
        schedules_ensure()
    assert _task(PIPELINE_TICK).interval.every == 120
    assert (_task(NIGHTLY_RETRAIN).crontab.minute, _task(NIGHTLY_RETRAIN).crontab.hour) == (
        "15",
        "4",
    )
    assert PeriodicTask.objects.filter(name__in=[PIPELINE_TICK, NIGHTLY_RETRAIN]).count() == 2


@pytest.mark.django_db
def test_a_changed_retrain_cron_replaces_the_nightly_schedule(settings) -> None:
    settings.RETRAIN_CRON = "30 3 * * 1-5"
    schedules_ensure()
    cron = _task(NIGHTLY_RETRAIN).crontab
    assert (cron.minute, cron.hour, cron.day_of_week) == ("30", "3", "1-5")
    assert "RETRAIN_CRON='30 3 * * 1-5'" in _task(NIGHTLY_RETRAIN).description


@pytest.mark.django_db
def test_empty_retrain_cron_means_no_nightly_retrain(settings) -> None:
    _as_migrate_leaves_them()
    settings.RETRAIN_CRON = ""
    enabled = {t.name for t in schedules_ensure()}
    assert enabled == {PIPELINE_TICK}
    assert not _task(NIGHTLY_RETRAIN).enabled  # the migration's row, now off
    PeriodicTask.objects.all().delete()
    schedules_ensure()
    assert not PeriodicTask.objects.filter(name=NIGHTLY_RETRAIN).exists()
    assert _task(PIPELINE_TICK).enabled


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("every night", "RETRAIN_CRON must have five fields"),
        ("61 2 * * *", r"RETRAIN_CRON '61 2 \* \* \*' is not a valid cron schedule: .*61"),
    ],
)
def test_a_bad_retrain_cron_is_refused_and_changes_nothing(settings, cron, message) -> None:
    PeriodicTask.objects.all().delete()
    settings.RETRAIN_CRON = cron
    with pytest.raises(ValueError, match=message):
        schedules_ensure()
    assert not PeriodicTask.objects.exists()


@pytest.mark.django_db
def test_the_admin_lists_and_edits_the_schedules(admin_client) -> None:
    _as_migrate_leaves_them()
    tick = _task(PIPELINE_TICK)
    listing = admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert PIPELINE_TICK in listing.content.decode()
    page = admin_client.get(reverse("admin:django_celery_beat_periodictask_change", args=[tick.pk]))
    assert page.status_code == 200


@pytest.mark.django_db
def test_status_page_fails_loudly_when_beat_is_silent(admin_client) -> None:
    Heartbeat.objects.all().delete()
    never = check_beat()
    assert not never.ok and "BEAT HAS NEVER RUN" in never.detail
    old = timezone.now() - timedelta(seconds=150)
    Heartbeat.objects.create(name="beat", beat_at=old)
    Heartbeat.objects.create(name="tick", beat_at=old)
    silent = check_beat()
    assert not silent.ok and "BEAT HAS NOT RUN FOR 15" in silent.detail
    html = admin_client.get(reverse("status")).content.decode()
    assert "BEAT HAS NOT RUN FOR" in html and "Some checks fail." in html
    minute_tick()  # a tick that ran proves beat sent it
    assert check_beat().ok
    Heartbeat.objects.filter(name="tick").update(beat_at=old)
    Heartbeat.objects.filter(name="beat").update(beat_at=timezone.now())
    assert check_beat().ok


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_beat_ensures_the_schedules_at_start_and_beats(tmp_path: Path) -> None:
    """A real `celery beat` on an empty schedule table (a database restored without them)."""
    import os
    import signal
    import subprocess
    import sys

    from django.db import connection

    PeriodicTask.objects.all().delete()
    db = connection.settings_dict
    env = service_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        CELERY_BROKER_URL="filesystem://",  # its own folders: sends reach no other test's worker
        WORKBENCH_VAR_DIR=str(tmp_path / "var"),
        RETRAIN_CRON="45 1 * * *",
    )
    log = tmp_path / "beat.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workbench", "beat", "--loglevel=INFO",
             "--schedule", str(tmp_path / "beat-schedule")],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not Heartbeat.objects.filter(name="beat").exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    assert _task(PIPELINE_TICK).enabled
    assert _task(NIGHTLY_RETRAIN).crontab.hour == "1"
    assert check_beat().ok
