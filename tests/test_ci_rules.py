"""With CI=true every kind of skip fails the run (tests/ci_rules.py); without it, tests skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests import ci_rules

ROOT = Path(__file__).resolve().parent.parent

SKIPPING = {
    "test_plain_skip.py": "import pytest\n\ndef test_it():\n    pytest.skip('no service')\n",
    "test_importorskip.py": (
        "import pytest\n\ndef test_it():\n    pytest.importorskip('no_such_module_anywhere')\n"
    ),
    "test_module_skip.py": (
        "import pytest\n\npytest.importorskip('no_such_module_anywhere')\n\ndef test_it():\n"
        "    pass\n"
    ),
    "test_fixture_skip.py": (
        "import pytest\n\n@pytest.fixture\ndef service():\n    pytest.skip('no service')\n\n"
        "def test_it(service):\n    pass\n"
    ),
    "test_marked_skip.py": (
        "import pytest\n\n@pytest.mark.skip(reason='later')\ndef test_it():\n    pass\n"
    ),
}


def _run(tmp_path: Path, names: list[str], ci: str | None) -> subprocess.CompletedProcess[str]:
    for name in names:
        (tmp_path / name).write_text(SKIPPING[name])
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the project's settings
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "DJANGO_SETTINGS_MODULE")}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.ci_rules", "-p", "no:cacheprovider",
         "-p", "no:django", "-rA", *(str(tmp_path / name) for name in names)],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def _failed(result: subprocess.CompletedProcess[str], name: str) -> bool:
    return any(
        line.startswith(("FAILED", "ERROR")) and name in line for line in result.stdout.splitlines()
    )


def test_every_kind_of_skip_fails_under_ci(tmp_path: Path) -> None:
    """A plain skip, importorskip, a fixture's skip and a skip marker each fail the run; so
    does a module skipped at collection (run alone: a collection error stops the run)."""
    in_tests = [name for name in SKIPPING if name != "test_module_skip.py"]
    result = _run(tmp_path, in_tests, ci="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert all(_failed(result, name) for name in in_tests), result.stdout
    assert result.stdout.count("skipped under CI=true") >= len(in_tests), result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1]
    result = _run(tmp_path, ["test_module_skip.py"], ci="true")
    assert result.returncode != 0 and _failed(result, "test_module_skip.py"), result.stdout
    assert "skipped under CI=true" in result.stdout


def test_outside_ci_a_skip_stays_a_skip(tmp_path: Path) -> None:
    result = _run(tmp_path, sorted(SKIPPING), ci=None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(SKIPPING)} skipped" in result.stdout.splitlines()[-1]


def test_each_allowed_skip_names_a_test_file_and_a_reason() -> None:
    for prefix, reason in ci_rules.ALLOWED_SKIPS.items():
        assert (ROOT / prefix.split("::")[0]).exists(), prefix
        assert reason.strip(), prefix
