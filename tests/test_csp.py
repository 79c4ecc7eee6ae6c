"""Every HTML response carries a CSP that forbids inline and eval'd scripts and styles."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def _html_pages(client, admin_user) -> list[str]:
    client.force_login(admin_user)
    return [
        reverse("login"),
        reverse("labeling:project_list"),
        reverse("status"),
        reverse("admin:index"),
        reverse("admin:labeling_project_changelist"),
        "/no-such-page/",
    ]


def test_every_html_response_has_a_strict_csp(client, admin_user) -> None:
    for url in _html_pages(client, admin_user):
        response = client.get(url)
        assert response["Content-Type"].startswith("text/html"), url
        header = response.headers.get("Content-Security-Policy")
        assert header, f"{url} has no CSP"
        directives = _directives(header)
        for name in ("script-src", "style-src"):
            sources = directives.get(name) or directives["default-src"]
            assert "'unsafe-inline'" not in sources, (url, name)
            assert "'unsafe-eval'" not in sources, (url, name)
        assert directives.get("object-src") == ["'none'"]


def test_our_templates_have_no_inline_script_or_style(client, admin_user) -> None:
    """Inline code would be blocked by the CSP anyway; catch it before a browser does."""
    client.force_login(admin_user)
    for url in (reverse("labeling:project_list"), reverse("status"), reverse("login")):
        html = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert "<style" not in html and " style=" not in html, url
        assert not re.search(r"\son[a-z]+=", html), url
        assert "hx-on" not in html and "js:" not in html, url
