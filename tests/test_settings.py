"""Settings: production refuses an unsafe start and passes Django's deployment checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(
    *args: str, env: dict[str, str], drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    dropped = ("SECRET_KEY", "WORKBENCH_MODE", *drop)
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_secret_key() -> None:
    result = _manage("check", env={"WORKBENCH_MODE": "production", "ALLOWED_HOSTS": "example.org"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_passes_check_deploy() -> None:
    key = "k" * 20 + "Zq8#x!2Lm-9vR_pT4wY7bN0cD3fG6hJ1"
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={"WORKBENCH_MODE": "production", "SECRET_KEY": key, "ALLOWED_HOSTS": "example.org"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_unknown_mode_is_refused() -> None:
    result = _manage("check", env={"WORKBENCH_MODE": "staging"})
    assert result.returncode != 0
    assert "WORKBENCH_MODE must be 'demo' or 'production'" in result.stderr


# Run on the embedded default whatever database the suite uses: a fresh SQLite file, a read
# inside atomic(), then a second connection that tries to take the write lock without waiting.
SQLITE_CHECK = """
import json, sqlite3
from django.conf import settings
from django.db import connection, transaction
with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    journal = cursor.fetchone()[0]
    cursor.execute("PRAGMA busy_timeout")
    busy_ms = cursor.fetchone()[0]
with transaction.atomic():
    connection.cursor().execute("SELECT 1")
    other = sqlite3.connect(settings.DATABASES["default"]["NAME"], timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.rollback()
        held = False
    except sqlite3.OperationalError as exc:
        held = "locked" in str(exc)
    other.close()
print("RESULT", json.dumps({"vendor": connection.vendor, "journal": journal,
                            "busy_ms": busy_ms, "write_lock_at_begin": held}))
"""


def test_embedded_sqlite_uses_wal_immediate_transactions_and_a_30s_busy_timeout(tmp_path) -> None:
    """The README's promise for the embedded default: WAL (readers never block the writer),
    transactions that take the write lock when they begin (IMMEDIATE), and 30 s of waiting for
    it; checked on a real SQLite file in a subprocess, so it runs in every test run."""
    result = _manage(
        "shell",
        "-c",
        SQLITE_CHECK,
        env={"WORKBENCH_VAR_DIR": str(tmp_path / "var")},
        drop=("DATABASE_URL",),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = json.loads(result.stdout.split("RESULT", 1)[1])
    assert found == {"vendor": "sqlite", "journal": "wal", "busy_ms": 30000,
                     "write_lock_at_begin": True}  # fmt: skip


def test_async_unsafe_database_access_is_not_allowed_outside_the_browser_tests() -> None:
    """Only the browser tests (whose Playwright loop runs in the test thread) may set it; here
    Django's guard against database calls from an event loop must stay on."""
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ
