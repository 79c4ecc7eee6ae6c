"""The admins' status page reports every part, and only admins see it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import QueueItemFactory, UserFactory
from workbench.core.models import Job

pytestmark = pytest.mark.django_db


def test_status_page_lists_checks_queues_and_jobs(admin_client) -> None:
    item = QueueItemFactory()
    Job.objects.create(
        kind="retrain", project=item.project, message="fitting <b>now</b>", progress=0.4
    )
    response = admin_client.get(reverse("status"))
    assert response.status_code == 200
    names = [c.name for c in response.context["checks"]]
    assert names == ["Database", "Broker", "Workers", "Beat"]
    database = response.context["checks"][0]
    assert database.ok and "all migrations applied" in database.detail
    html = response.content.decode()
    assert item.project.name in html
    assert "fitting &lt;b&gt;now&lt;/b&gt;" in html  # job messages are escaped
    # No worker runs during this test: the page says so instead of failing.
    assert "no worker answered a ping" in html


def test_status_partial_for_htmx(admin_client) -> None:
    response = admin_client.get(reverse("status"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="status-checks"')
    assert "<html" not in html


def test_status_page_is_for_staff_only(client) -> None:
    client.force_login(UserFactory())
    response = client.get(reverse("status"))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_healthz_is_public_and_terse(client) -> None:
    response = client.get(reverse("healthz"))
    assert response.status_code == 200 and response.json() == {"ok": True}
