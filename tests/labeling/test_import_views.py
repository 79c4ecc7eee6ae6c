"""The upload page: admins only; an upload becomes a Job that imports; the report is escaped."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from labeling.models import Case, ProjectRole
from labeling.services.imports import report as msg
from labeling.services.imports.jobs import IMPORT_JOB_KIND, case_import_run, upload_dir
from tests.factories import LabelClassFactory, ProjectFactory, UserFactory
from workbench.celery import app as celery_app
from workbench.core.models import Job, JobStatus

pytestmark = pytest.mark.django_db

GOOD = b"id,text,label\nm1,Handmade mugs,retail\nm2,Ceramic bowls,retail\n"
BAD = b"id,text,label\nm1,Handmade mugs,retail\n<script>alert(1)</script>,,retail\n"


@pytest.fixture
def project(settings, tmp_path):
    settings.WORKBENCH_DATA_DIR = tmp_path / "data"
    project = ProjectFactory()
    LabelClassFactory(project=project, name="retail", shortcut_key="1")
    return project


@pytest.fixture
def eager():
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def upload(client, project, content: bytes, name: str = "cases.csv", **extra):
    data = {
        "file": SimpleUploadedFile(name, content),
        "id_column": "id",
        "text_column": "text",
        "label_column": "label",
        **extra,
    }
    return client.post(reverse("labeling:case_import", args=[project.slug]), data)


def test_only_admins_may_import(client, project) -> None:
    """Anonymous users go to the login page; analysts get 403; project admins get the page."""
    url = reverse("labeling:case_import", args=[project.slug])
    assert client.get(url).status_code == 302
    analyst = UserFactory()
    project.memberships.create(user=analyst, role=ProjectRole.ANALYST)
    client.force_login(analyst)
    assert client.get(url).status_code == 403
    assert upload(client, project, GOOD).status_code == 403
    assert not Job.objects.exists() and not Case.objects.exists()
    admin = UserFactory()
    project.memberships.create(user=admin, role=ProjectRole.ADMIN)
    client.force_login(admin)
    response = client.get(url)
    assert response.status_code == 200 and b'enctype="multipart/form-data"' in response.content


def test_upload_creates_a_job_that_imports(
    admin_client, project, eager, django_capture_on_commit_callbacks
) -> None:
    """The file is stored, a job queued on commit, run, and the page shows the counts."""
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, project, GOOD)
    job = Job.objects.get(kind=IMPORT_JOB_KIND)
    assert response.status_code == 302
    assert response["Location"] == reverse("labeling:case_import_job", args=[project.slug, job.pk])
    assert job.status == JobStatus.SUCCEEDED and job.result["ok"] and job.progress == 1.0
    assert Case.objects.filter(project=project).count() == 2
    assert not list(upload_dir().iterdir())  # the upload is removed once read
    page = admin_client.get(response["Location"])
    assert page.status_code == 200 and "Import into" in page.content.decode()
    partial = admin_client.get(response["Location"], HTTP_HX_REQUEST="true")
    assert partial.status_code == 286  # finished: htmx stops polling
    html = partial.content.decode()
    assert html.lstrip().startswith('<div id="import-progress"') and "<html" not in html
    assert "hx-trigger" not in html and "<td>2</td>" in html


def test_the_upload_names_the_label_source_column(admin_client, project) -> None:
    """The form's optional label-source column reaches the job; left empty, `label_source`."""
    content = b"id,text,label,given_by\nm1,Handmade mugs,retail,vendor_feed\n"
    page = admin_client.get(reverse("labeling:case_import", args=[project.slug])).content.decode()
    assert 'name="label_source_column" value="label_source"' in page
    upload(admin_client, project, content, label_source_column="given_by")
    job = Job.objects.get(kind=IMPORT_JOB_KIND)
    assert job.params["columns"]["label_source"] == "given_by"
    assert case_import_run(job_id=job.pk).ok
    case = Case.objects.get(external_id="m1")
    assert case.given_label_source == "vendor_feed" and "given_by" not in case.metadata
    upload(admin_client, project, b"id,text,label_source\nm2,Bowls,ops_team\n")
    job = Job.objects.filter(kind=IMPORT_JOB_KIND).latest("pk")
    assert job.params["columns"]["label_source"] == "label_source"
    assert case_import_run(job_id=job.pk).ok
    assert Case.objects.get(external_id="m2").given_label_source == "ops_team"


def test_bad_file_shows_the_escaped_report(admin_client, project) -> None:
    """Nothing is imported and the problems are listed, with untrusted text escaped."""
    upload(admin_client, project, BAD)
    job = Job.objects.get(kind=IMPORT_JOB_KIND)
    url = reverse("labeling:case_import_job", args=[project.slug, job.pk])
    running = admin_client.get(url, HTTP_HX_REQUEST="true")
    assert running.status_code == 200 and 'hx-trigger="every 1s"' in running.content.decode()
    report = case_import_run(job_id=job.pk)
    assert report is not None and not report.ok
    assert case_import_run(job_id=job.pk) is None  # a job runs once
    html = admin_client.get(url).content.decode()
    assert Case.objects.count() == 0
    assert msg.ERR_MISSING_TEXT in html and "<td>3</td>" in html
    problem = BAD.decode().splitlines()[2].split(",")[0]
    assert problem not in html  # the raw markup never reaches the page
    bad_file = upload(admin_client, project, b"x", name="cases.xlsx")
    assert bad_file.status_code == 200
    assert escape(msg.ERR_UNKNOWN_FORMAT.format(suffix=".xlsx")) in bad_file.content.decode()


def test_escaped_values_in_messages(admin_client, project) -> None:
    """A hostile id inside a message is shown as text."""
    content = b"id,text,label\n<b>x</b>,Mugs,retail\n<b>x</b>,Mugs,retail\n"
    upload(admin_client, project, content)
    job = Job.objects.get(kind=IMPORT_JOB_KIND)
    case_import_run(job_id=job.pk)
    html = admin_client.get(
        reverse("labeling:case_import_job", args=[project.slug, job.pk])
    ).content.decode()
    assert "&#x27;&lt;b&gt;x&lt;/b&gt;&#x27; appears more than once" in html
    assert "<b>x</b>" not in html


def test_an_upload_survives_a_broker_that_is_down(
    admin_client, project, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """The send failing after commit is logged; the job stays queued for the resend."""
    from labeling import tasks

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.case_import_task, "apply_async", down)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, project, GOOD)
    assert response.status_code == 302
    job = Job.objects.get(kind=IMPORT_JOB_KIND)
    assert job.status == JobStatus.QUEUED


def test_a_duplicate_message_runs_the_import_once(project, monkeypatch) -> None:
    """The job is claimed by a conditional update: a second runner finds it running and leaves."""
    from labeling.services.imports import jobs

    job = _queued_job(project)
    seen = []
    real = jobs.get_user_model

    def race():  # a second message is handled just after the first runner read the job
        if not seen:
            seen.append("racing")
            seen.append(case_import_run(job_id=job.pk))
        return real()

    monkeypatch.setattr(jobs, "get_user_model", race)
    report = case_import_run(job_id=job.pk)
    assert report is not None and report.ok and seen == ["racing", None]
    assert Case.objects.filter(project=project).count() == 2
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED


def _queued_job(project):
    from labeling.services.imports.jobs import case_import_upload
    from labeling.services.imports.validate import Columns

    return case_import_upload(
        project=project, upload=SimpleUploadedFile("cases.csv", GOOD), columns=Columns()
    )


def test_queued_import_jobs_nobody_picked_up_are_resent(project, monkeypatch) -> None:
    """Jobs queued over two minutes ago are sent again; fresh and finished ones are not."""
    from datetime import timedelta

    from django.utils import timezone

    from labeling import tasks
    from labeling.services.imports.jobs import import_jobs_resend_stale

    old, _fresh, done = _queued_job(project), _queued_job(project), _queued_job(project)
    past = timezone.now() - timedelta(minutes=3)
    Job.objects.filter(pk__in=[old.pk, done.pk]).update(created_at=past)
    Job.objects.filter(pk=done.pk).update(status=JobStatus.SUCCEEDED)
    sent = []
    monkeypatch.setattr(
        tasks.case_import_task, "apply_async", lambda args, queue: sent.append((args[0], queue))
    )
    assert import_jobs_resend_stale() == [old.pk]
    assert sent == [(old.pk, "short")]  # its file is gone: small enough for the short queue

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.case_import_task, "apply_async", down)
    assert import_jobs_resend_stale() == []  # logged, never raised: the next tick retries
    old.refresh_from_db()
    assert old.status == JobStatus.QUEUED
