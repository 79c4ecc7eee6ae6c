"""Settings: production refuses an unsafe start and passes Django's deployment checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE for themselves; a deployment never would.
    dropped = ("SECRET_KEY", "WORKBENCH_MODE", "DJANGO_ALLOW_ASYNC_UNSAFE")
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


def test_demo_sqlite_uses_wal_and_immediate_transactions(settings, tmp_path) -> None:
    import sqlite3

    from django.db import connection

    if connection.vendor != "sqlite":
        import pytest

        pytest.skip("embedded-default check; the SQLite path is covered by test_embedded_default")
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in options["init_command"]
    assert options["timeout"] >= 5
    assert sqlite3.sqlite_version_info >= (3, 7)
