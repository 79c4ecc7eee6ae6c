"""The label quality page in a real browser: a reviewer reaches it from the project list with the
keyboard alone (Tab to the link, Enter), and a hostile analyst name stays text under the CSP."""

from __future__ import annotations

import pytest

from labeling.models import ProjectRole
from tests.e2e.conftest import log_in
from tests.e2e.test_queue_browser import member
from tests.factories import AnalystFactory, LabelClassFactory, ProjectFactory
from tests.labeling.quality_runs import MATRIX_A_TO_B, consensus_cases, store_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
MAX_TABS = 40


def test_reviewer_opens_the_quality_page_from_the_project_list_by_keyboard(
    live_server, guarded_page
) -> None:
    page = guarded_page
    project = ProjectFactory(name="Merchant risk")
    classes = [
        LabelClassFactory(project=project, display_name=n) for n in ("OK", "Gambling", "Pawn")
    ]
    consensus_cases(project, [(classes[0], 30), (classes[1], 10)])
    store_run(
        project,
        classes,
        analysts=[(AnalystFactory(username=HOSTILE), 0.71, MATRIX_A_TO_B, 120, 4, 3)],
        sources=[("mcc_rules_v2", 0.84, MATRIX_A_TO_B, 900)],
    )
    reviewer = member(project, role=ProjectRole.REVIEWER)
    log_in(page, live_server.url, reviewer.username)
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Label quality":
            break
    else:
        pytest.fail("Tab never reached the Label quality link")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/projects/{project.slug}/quality/")
    assert page.inner_text("h1") == "Label quality in Merchant risk"
    assert "over 1,415 cases" in page.inner_text("#alpha")
    assert HOSTILE in page.inner_text("#analyst-table")  # shown as text, never run
