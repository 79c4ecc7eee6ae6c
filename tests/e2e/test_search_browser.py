"""The case search in a real browser: words, a filter and the next page from the keyboard alone,
results swapped in by htmx with the URL kept bookmarkable, hostile names inert under the CSP."""

from __future__ import annotations

import os
import re

import pytest

from labeling.models import LabelClass, ProjectRole
from tests.e2e.conftest import log_in
from tests.e2e.test_queue_browser import member
from tests.factories import CaseFactory, ProjectFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def test_search_filter_and_page_on_from_the_keyboard(live_server, guarded_page) -> None:
    page = guarded_page
    project = ProjectFactory(name="Merchant risk")
    fashion = LabelClass.objects.create(project=project, name="fashion", shortcut_key="1")
    other = LabelClass.objects.create(project=project, name="other", shortcut_key="2")
    for i in range(60):  # 55 named "Bright Fashion ...", five of another class
        CaseFactory(
            project=project,
            external_id=f"BF-{i:03d}",
            given_label=fashion if i < 55 else other,
            metadata={"business_name": f"Bright Fashion {HOSTILE if i == 54 else i}"},
        )
    CaseFactory(project=project, external_id="ZZ-1", metadata={"business_name": "Dull Tools"})
    reviewer = member(project, role=ProjectRole.REVIEWER)
    log_in(page, live_server.url, reviewer.username)
    page.goto(f"{live_server.url}/projects/{project.slug}/cases/")
    # Before htmx is set up, Enter submits the plain form (every field in the URL): on a busy
    # machine the keys below came first once.
    page.wait_for_function("() => window.htmx !== undefined && document.readyState === 'complete'")
    # The words box has the focus; a filter is a few keys away; Enter searches.
    page.keyboard.type("bright fashion")
    page.keyboard.press("Tab")  # the Search button
    page.keyboard.press("Tab")  # the given-label filter
    assert page.evaluate("document.activeElement.name") == "given"
    page.keyboard.press("f")  # picks "fashion"
    assert page.evaluate("document.activeElement.value") == "fashion"
    page.keyboard.press("Shift+Tab")  # back to the Search button
    page.keyboard.press("Enter")
    # The pushed URL names only the fields filled in (and the default sort).
    page.wait_for_url(re.compile(r".*/cases/\?q=bright(\+|%20)fashion&given=fashion&sort=changed$"))
    page.wait_for_selector("#search-summary")
    if os.environ.get("SEARCH_SCREENSHOT"):
        page.screenshot(path=os.environ["SEARCH_SCREENSHOT"], full_page=True)
    results = page.inner_text("#search-results")
    assert "ZZ-1" not in results and "BF-059" not in results  # another class, no such words
    assert HOSTILE in results  # a name shown as text, never run
    assert page.locator("#search-results tbody tr").count() == 50
    # Tab to "Next 50 cases" and follow it: the rest come in, the focus goes to their summary.
    for _ in range(200):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.rel") == "next":
            break
    else:
        pytest.fail("Tab never reached the next page link")
    page.keyboard.press("Enter")
    page.wait_for_url("**after=*")
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.id === 'search-summary'"
    )
    assert page.locator("#search-results tbody tr").count() == 5
    assert "first page" not in page.inner_text("#search-summary")
    # The URL is the search: opening it afresh shows the same page.
    page.goto(page.url)
    assert page.locator("#search-results tbody tr").count() == 5
