"""The export page: choose and start, follow the job's progress by htmx, download the file."""

from __future__ import annotations

from unittest import mock

import pytest
from django.urls import reverse

from labeling.models import ProjectRole
from labeling.services.exports.jobs import EXPORT_JOB_KIND, case_export_run
from tests.factories import AnalystFactory, CaseFactory, LabelClassFactory, ProjectFactory
from workbench.core.models import Job, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(client, settings, tmp_path):
    settings.WORKBENCH_DATA_DIR = tmp_path
    project = ProjectFactory(slug="shop")
    label = LabelClassFactory(project=project, name="legit")
    CaseFactory.create_batch(3, project=project, given_label=label)
    admin = AnalystFactory()
    project.memberships.create(user=admin, role=ProjectRole.ADMIN)
    client.force_login(admin)
    return project


def _start(client, project, **data) -> Job:
    form = {"format": "jsonl", "cases": "all", "split": "all", **data}
    with mock.patch("labeling.tasks.case_export_task.apply_async"):
        response = client.post(reverse("labeling:case_export", args=[project.slug]), form)
    job = Job.objects.get(kind=EXPORT_JOB_KIND)
    assert response["Location"] == reverse("labeling:case_export_job", args=[project.slug, job.pk])
    return job


def test_start_follow_and_download(client, setup) -> None:
    """The form queues a job with the chosen options; the partial polls until it finishes,
    then links the file, which is streamed as an attachment."""
    project = setup
    job = _start(client, project, provenance="on", split="pool")
    assert job.params["format"] == "jsonl"
    assert job.params["options"] == {
        "cases": "all",
        "split": "pool",
        "include_excluded": False,
        "provenance": True,
    }
    url = reverse("labeling:case_export_job", args=[project.slug, job.pk])
    polling = client.get(url, headers={"HX-Request": "true"})
    assert polling.status_code == 200 and b'hx-trigger="every 1s"' in polling.content
    assert b"<html" not in polling.content  # the partial only
    case_export_run(job_id=job.pk)
    done = client.get(url, headers={"HX-Request": "true"})
    assert done.status_code == 286  # htmx stops polling
    job.refresh_from_db()
    name = job.result["files"][0]
    download = reverse("labeling:case_export_download", args=[project.slug, job.pk, name])
    assert download.encode() in done.content
    response = client.get(download)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    body = b"".join(response.streaming_content)
    assert body.count(b"\n") == 3 and b'"annotations": []' in body
    manifest = client.get(
        reverse(
            "labeling:case_export_download", args=[project.slug, job.pk, job.result["manifest"]]
        )
    )
    assert manifest.status_code == 200


def test_no_download_before_the_end_or_after_expiry(client, setup) -> None:
    project = setup
    job = _start(client, project)
    url = reverse("labeling:case_export_download", args=[project.slug, job.pk, "shop.jsonl"])
    assert client.get(url).status_code == 404
    case_export_run(job_id=job.pk)
    job.refresh_from_db()
    Job.objects.filter(pk=job.pk).update(result={**job.result, "expired": True})
    name = job.result["files"][0]
    url = reverse("labeling:case_export_download", args=[project.slug, job.pk, name])
    assert client.get(url).status_code == 404


def test_another_projects_export_is_not_found(client, setup) -> None:
    other = ProjectFactory()
    job = Job.objects.create(kind=EXPORT_JOB_KIND, project=other, status=JobStatus.SUCCEEDED)
    url = reverse("labeling:case_export_job", args=[setup.slug, job.pk])
    assert client.get(url).status_code == 404


def test_admin_action_queues_an_export(admin_client, setup) -> None:
    project = setup
    with mock.patch("labeling.tasks.case_export_task.apply_async"):
        response = admin_client.post(
            reverse("admin:labeling_project_changelist"),
            {"action": "export_csv", "_selected_action": [project.pk]},
            follow=True,
        )
    job = Job.objects.get(kind=EXPORT_JOB_KIND, project=project)
    assert job.params["format"] == "csv"
    assert "export job" in response.content.decode()
