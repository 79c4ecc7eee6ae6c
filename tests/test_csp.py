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


@pytest.fixture
def dashboard_project(settings, tmp_path):
    """A project with two model versions, so the dashboard shows every panel and plot."""
    from tests.active_learning.dashboard import builders

    settings.WORKBENCH_DATA_DIR = tmp_path
    project, classes = builders.project_with_classes()
    builders.history(project, classes, versions=2)
    return project


def _html_pages(client, admin_user, project=None) -> list[str]:
    client.force_login(admin_user)
    dashboard = [reverse("active_learning:dashboard", args=[project.slug])] if project else []
    return [
        *dashboard,
        reverse("login"),
        reverse("labeling:project_list"),
        reverse("status"),
        reverse("admin:index"),
        reverse("admin:labeling_project_changelist"),
        "/no-such-page/",
    ]


def test_every_html_response_has_a_strict_csp(client, admin_user, dashboard_project) -> None:
    for url in _html_pages(client, admin_user, dashboard_project):
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


def test_our_templates_have_no_inline_script_or_style(
    client, admin_user, dashboard_project
) -> None:
    """Inline code would be blocked by the CSP anyway; catch it before a browser does."""
    client.force_login(admin_user)
    dashboard = reverse("active_learning:dashboard", args=[dashboard_project.slug])
    for url in (dashboard, reverse("labeling:project_list"), reverse("status"), reverse("login")):
        html = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert "<style" not in html and " style=" not in html, url
        assert not re.search(r"\son[a-z]+=", html), url
        assert "hx-on" not in html and "js:" not in html, url


def test_dashboard_plots_are_images_not_documents(client, admin_user, dashboard_project) -> None:
    """Plots are PNGs served from their own URLs: no markup, so nothing inline to allow, and
    the page's strict CSP stays as it is (img-src 'self')."""
    client.force_login(admin_user)
    html = client.get(reverse("active_learning:dashboard", args=[dashboard_project.slug]))
    page = html.content.decode()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 4
    assert all(
        s.startswith(f"/projects/{dashboard_project.slug}/dashboard/plots/") for s in sources
    )
    assert "data:" not in "".join(sources)
    assert "'self'" in _directives(html["Content-Security-Policy"])["img-src"]
    for src in sources:
        response = client.get(src.replace("&amp;", "&"))
        assert response["Content-Type"] == "image/png", src
        assert response.content.startswith(b"\x89PNG"), src
