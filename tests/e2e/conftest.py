"""Browser tests: Playwright on Debian's chromium against pytest-django's live server.

Every page opened through `guarded_page` fails its test if a dialog opens (an injected script ran)
or the Content-Security-Policy reports a violation (recorded by an init script that survives
navigations, and by console errors that mention the policy).
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

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


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": ["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}}


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
