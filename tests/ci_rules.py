"""Under CI=true a skipped test fails the run, unless it is on ALLOWED_SKIPS with its reason.

A skip in CI hides whatever the test checks (a service not configured, a module not installed,
a branch for another database): it turns into a failure here, whichever way it was raised
(a marker's rule, `pytest.skip`, `importorskip`, a skip at collection). Loaded by
tests/conftest.py; tests/test_ci_rules.py runs it on a throwaway test file.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# node id prefix -> why a skip there cannot hide a break in CI. Empty: no test may skip in CI.
ALLOWED_SKIPS: dict[str, str] = {}
# The fault suite starts every server it needs itself, so nothing there may ever skip in CI.
NEVER_SKIPPED = ("tests/faults",)
assert not [p for p in ALLOWED_SKIPS if p.startswith(NEVER_SKIPPED)], "fault tests must run in CI"

NOT_ALLOWED = (
    "skipped under CI=true ({reason}); a skip in CI hides what the test checks: make it run, "
    "or add it to ALLOWED_SKIPS in tests/ci_rules.py with the reason it is safe"
)


def skip_allowed(nodeid: str) -> bool:
    return any(nodeid.startswith(prefix) for prefix in ALLOWED_SKIPS)


def _reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: why")
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator:
    outcome = yield
    report = outcome.get_result()
    skipped = report.skipped and not hasattr(report, "wasxfail")  # an xfail reports as skipped
    if IN_CI and skipped and not skip_allowed(item.nodeid):
        report.outcome = "failed"
        report.longrepr = NOT_ALLOWED.format(reason=_reason(report.longrepr))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not skip_allowed(collector.nodeid):
        report.outcome = "failed"
        report.longrepr = NOT_ALLOWED.format(reason=_reason(report.longrepr))
