"""The project dashboard in chromium: reached from the project list, every plot loads as an
image under the strict CSP (no violation, no inline code), and the README's screenshot.

The screenshot goes to a temporary folder; UPDATE_SCREENSHOT=1 writes docs/dashboard.png.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from active_learning.services.dashboard import dashboard_snapshot_refresh
from labeling.models import ProjectRole
from tests.active_learning.dashboard import builders
from tests.e2e.conftest import log_in
from tests.e2e.test_queue_browser import member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_dashboard_in_the_browser(live_server, guarded_page, settings, tmp_path) -> None:
    settings.WORKBENCH_DATA_DIR = tmp_path / "data"
    page = guarded_page
    project, classes = builders.project_with_classes(name="Merchant risk", slug="merchant-risk")
    builders.history(project, classes, versions=7)
    reviewer = member(project, role=ProjectRole.REVIEWER, name="rhea")
    analysts = [member(project, name=n) for n in ("dana", "omar")]
    cases = list(project.cases.all()[:12])
    for i, case in enumerate(cases):
        builders.answer(case, analysts[i % 2], skipped=i % 5 == 0, duration_ms=3000 + 400 * i)
    dashboard_snapshot_refresh(project=project, force=True)  # as the next worker run would
    log_in(page, live_server.url, reviewer.username)
    page.click("text=Dashboard")
    page.wait_for_url(f"{live_server.url}/projects/{project.slug}/dashboard/")
    page.wait_for_load_state("networkidle")
    assert page.inner_text("h1") == "Dashboard of Merchant risk"
    loaded = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
    assert loaded == [True, True, True, True]
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    assert page.evaluate("document.querySelectorAll('[style]').length") == 0
    assert "Champion: v7" in page.inner_text("#model-panel")
    target = DOCS if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path
    target.mkdir(exist_ok=True)
    page.screenshot(path=str(target / "dashboard.png"), full_page=True)
    assert (target / "dashboard.png").stat().st_size > 50_000
