"""The project list: progress per project; admins start a retrain and follow its bar (286 stops)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from active_learning.models import ModelStatus, ModelVersion
from active_learning.services.retrain_requests import KIND
from labeling.models import ProjectRole
from tests.factories import AnalystFactory, CaseFactory, ProjectFactory, QueueItemFactory
from workbench.core.models import Job, JobStatus

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def project():
    project = ProjectFactory(name="Risk")
    for _ in range(3):
        QueueItemFactory(case=CaseFactory(project=project))
    ModelVersion.objects.create(
        project=project, number=2, status=ModelStatus.CHAMPION, metrics={"macro_f1": 0.8123}
    )
    return project


def _member(client, project, role):
    user = AnalystFactory()
    project.memberships.create(user=user, role=role)
    client.force_login(user)
    return user


def test_list_shows_progress_and_only_own_projects(client, project) -> None:
    ProjectFactory(name="Secret")
    _member(client, project, ProjectRole.ANALYST)
    html = client.get(reverse("labeling:project_list")).content.decode()
    assert "Risk" in html and "Secret" not in html
    assert "0.812" in html and "never" in html and "Retrain now" not in html


def test_admin_starts_a_retrain_and_the_bar_polls_until_done(client, project) -> None:
    _member(client, project, ProjectRole.ADMIN)
    assert "Retrain now" in client.get(reverse("labeling:project_list")).content.decode()
    response = client.post(reverse("labeling:project_retrain", args=[project.slug]), **HX)
    job = Job.objects.get(kind=KIND, project=project)
    assert job.params["reason"] == "manual"
    assert 'hx-trigger="every 2s"' in response.content.decode()
    # A second click while one is pending starts nothing new.
    client.post(reverse("labeling:project_retrain", args=[project.slug]))
    assert Job.objects.filter(kind=KIND).count() == 1
    progress = reverse("labeling:retrain_progress", args=[project.slug])
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, progress=0.4)
    response = client.get(progress, **HX)
    assert response.status_code == 200 and 'value="40"' in response.content.decode()
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, progress=1.0)
    response = client.get(progress, **HX)
    assert response.status_code == 286 and "every 2s" not in response.content.decode()


def test_an_imports_embedding_job_shows_its_bar_with_rate_and_time_left(client, project) -> None:
    _member(client, project, ProjectRole.ANALYST)
    Job.objects.create(kind=KIND, project=project, status=JobStatus.SUCCEEDED, progress=1.0)
    Job.objects.create(
        kind="embed",
        project=project,
        status=JobStatus.RUNNING,
        progress=0.25,
        message="25,000/100,000 texts, 410 texts/s, about 3 min left",
    )
    progress = reverse("labeling:retrain_progress", args=[project.slug])
    html = client.get(progress, **HX).content.decode()
    assert "Embedding new texts" in html and 'value="25"' in html
    assert "410 texts/s, about 3 min left" in html
    Job.objects.filter(kind="embed").update(
        status=JobStatus.FAILED, error="disk full", finished_at="2026-12-03T10:00:00Z"
    )
    response = client.get(progress, **HX)
    assert response.status_code == 286
    assert "Last embedding job failed: disk full" in response.content.decode()
