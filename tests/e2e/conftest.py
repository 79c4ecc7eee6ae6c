"""Browser tests: Playwright on Debian's chromium against pytest-django's live server.

Every page opened through `guarded_page` fails its test if a dialog opens (an injected script ran)
or the Content-Security-Policy reports a violation (recorded by an init script that survives
navigations, and by console errors that mention the policy).

Playwright's sync API keeps an asyncio loop running in the test thread, so Django refuses the
tests' own database calls unless DJANGO_ALLOW_ASYNC_UNSAFE is set. It is set for this package
only, and Playwright lives for this package only (pytest-playwright's session-scoped fixtures
are narrowed below), so every other test keeps Django's guard.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

CSP_RECORDER = """
(() => {
  window.__csp = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    const entry = `${e.violatedDirective} ${e.blockedURI}`;
    window.__csp.push(entry);
    if (window.__reportCsp) window.__reportCsp(entry);
  });
})();
"""
PASSWORD = "pw-for-tests-only"


@pytest.fixture(scope="package", autouse=True)
def _async_unsafe_allowed() -> Iterator[None]:
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if before is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="package")
def playwright(_async_unsafe_allowed, _pw_api_request_contexts) -> Iterator[Any]:
    """pytest-playwright's, stopped when this package ends (its loop with it)."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    if _pw_api_request_contexts:
        _pw_api_request_contexts.instrument(pw)
    yield pw
    pw.stop()


@pytest.fixture(scope="package")
def browser_type(playwright, browser_name: str) -> Any:
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args, browser_type, connect_options) -> Any:
    def launch(**kwargs: Any) -> Any:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    assert connect_options is None  # this suite launches its own chromium
    return launch


@pytest.fixture(scope="package")
def browser(launch_browser) -> Iterator[Any]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": ["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
    }


@pytest.fixture(scope="package")
def browser_context_args(base_url) -> dict[str, Any]:
    """pytest-playwright's (which needs its session-wide Playwright) without its --device and
    --video options, which this suite does not use."""
    args: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
    if base_url:
        args["base_url"] = base_url
    return args


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """Retrains the pages may ask for are recorded as jobs but never sent to a broker here."""
    from active_learning.services import retrain_requests

    monkeypatch.setattr(retrain_requests, "_enqueue", lambda job: None)


class Guard:
    """Collects dialogs, CSP violations and CSP console errors of every page it watches."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.violations: list[str] = []

    def watch(self, page):
        page.add_init_script(CSP_RECORDER)
        page.expose_function("__reportCsp", lambda entry: self.violations.append(entry))

        def on_dialog(dialog) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        def on_console(message) -> None:
            if message.type == "error" and "Content Security Policy" in message.text:
                self.violations.append(message.text)

        page.on("dialog", on_dialog)
        page.on("console", on_console)
        return page

    def check(self, *pages) -> None:
        for page in pages:
            if not page.is_closed():
                self.violations.extend(page.evaluate("window.__csp || []"))
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"
        assert self.violations == [], f"CSP violations: {self.violations}"


@pytest.fixture
def guard():
    return Guard()


@pytest.fixture
def guarded_page(context, guard):
    page = guard.watch(context.new_page())
    yield page
    guard.check(page)


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/projects/")
