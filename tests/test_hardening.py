"""Hardening of the site around the apps: oversized uploads refused unread, a styled 403 logged
in one line, a NUL in a case URL, production refusing DEBUG, the demo's secret key private."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from labeling.models import Case, ProjectRole
from tests.factories import CaseFactory, LabelClassFactory, ProjectFactory, UserFactory
from workbench.core.limits import ERR_TOO_LARGE
from workbench.core.models import Job

ROOT = Path(__file__).resolve().parent.parent


class Unreadable:
    """A request body that fails the test if anything reads it."""

    def read(self, *args: object) -> bytes:
        raise AssertionError("the oversized body was read")

    readline = read


@pytest.mark.django_db
def test_an_upload_over_the_limit_is_refused_before_its_body_is_read(
    admin_client, settings, tmp_path
) -> None:
    settings.IMPORT_UPLOAD_MAX_MB = 1
    settings.WORKBENCH_DATA_DIR = tmp_path / "data"
    project = ProjectFactory()
    size = 253 * 1024 * 1024
    response = admin_client.generic(
        "POST",
        reverse("labeling:case_import", args=[project.slug]),
        b"x",
        content_type="multipart/form-data; boundary=B",
        **{"wsgi.input": Unreadable(), "CONTENT_LENGTH": str(size)},
    )
    assert response.status_code == 413
    html = response.content.decode()
    assert ERR_TOO_LARGE.format(size=253.0, limit=1.0).split(":")[0] in html
    assert "253.0 MB" in html and "at most 1.0 MB" in html and "import_cases" in html
    assert not Job.objects.exists() and not Case.objects.exists()
    assert not (tmp_path / "data").exists()


@pytest.mark.django_db
def test_an_upload_under_the_limit_goes_through(admin_client, settings, tmp_path) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.IMPORT_UPLOAD_MAX_MB = 1
    settings.WORKBENCH_DATA_DIR = tmp_path / "data"
    project = ProjectFactory()
    LabelClassFactory(project=project, name="retail", shortcut_key="1")
    page = admin_client.get(reverse("labeling:case_import", args=[project.slug]))
    assert "1 MB; import larger ones" in page.content.decode()
    response = admin_client.post(
        reverse("labeling:case_import", args=[project.slug]),
        {
            "file": SimpleUploadedFile("a.csv", b"id,text\na,b\n"),
            "id_column": "id",
            "text_column": "text",
            "label_column": "label",
        },
    )
    assert response.status_code == 302 and Job.objects.count() == 1


@pytest.mark.django_db
def test_a_403_is_the_sites_own_page_and_one_log_line(client, caplog) -> None:
    project = ProjectFactory()
    analyst = UserFactory()
    project.memberships.create(user=analyst, role=ProjectRole.ANALYST)
    client.force_login(analyst)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get(reverse("labeling:case_import", args=[project.slug]))
    assert response.status_code == 403
    html = response.content.decode()
    assert "Not allowed" in html and 'href="/static/css/app.css"' in html
    assert reverse("labeling:project_list") in html  # navigation back into the site
    forbidden = [r for r in caplog.records if r.name == "django.request"]
    assert forbidden and "Forbidden" in forbidden[0].getMessage()
    assert all(r.exc_info is None and not r.exc_text for r in forbidden)


@pytest.mark.django_db
def test_a_nul_or_odd_digits_in_a_case_url_is_not_found(client) -> None:
    project = ProjectFactory()
    CaseFactory(project=project, external_id="ab")
    reviewer = UserFactory()
    project.memberships.create(user=reviewer, role=ProjectRole.REVIEWER)
    client.force_login(reviewer)
    for key in ("a%00b", "pk:%C2%B2"):
        response = client.get(f"/projects/{project.slug}/cases/{key}/")
        assert response.status_code == 404, key


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dropped = ("SECRET_KEY", "WORKBENCH_MODE", "DJANGO_ALLOW_ASYNC_UNSAFE", "DEBUG")
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_debug() -> None:
    key = "k" * 20 + "Zq8#x!2Lm-9vR_pT4wY7bN0cD3fG6hJ1"
    env = {"WORKBENCH_MODE": "production", "SECRET_KEY": key, "ALLOWED_HOSTS": "example.org"}
    result = _manage("check", env={**env, "DEBUG": "true"})
    assert result.returncode != 0
    assert "DEBUG must be false when WORKBENCH_MODE=production" in result.stderr


def test_the_demo_secret_key_is_readable_by_its_owner_only(tmp_path) -> None:
    var = tmp_path / "var"
    env = {"WORKBENCH_VAR_DIR": str(var), "WORKBENCH_MODE": "demo"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = _manage("check", env=env)
    assert result.returncode == 0, result.stderr
    key = var / "secret_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key.chmod(0o644)  # written by an older version: tightened at the next start
    assert _manage("check", env=env).returncode == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
