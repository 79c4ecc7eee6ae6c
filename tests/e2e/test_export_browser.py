"""The export page in a real browser: an admin chooses format and content, starts the export,
watches the progress bar move (htmx polling), and downloads the file when it is done."""

from __future__ import annotations

import csv
import threading
import time

import pytest

from labeling.models import ProjectRole
from labeling.services.exports import jobs as export_jobs
from labeling.services.exports import rows as export_rows
from labeling.services.exports import writers
from tests.e2e.conftest import log_in
from tests.e2e.test_queue_browser import member
from tests.factories import CaseFactory, LabelClassFactory, ProjectFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CASES = 120


@pytest.fixture
def slow_worker(monkeypatch, settings, tmp_path):
    """The task runs in a thread of the live server (no broker), slowly enough to be watched:
    small pages, a pause after each, progress written at every page."""
    settings.WORKBENCH_DATA_DIR = tmp_path
    monkeypatch.setattr(export_rows, "PAGE_SIZE", 10)
    monkeypatch.setattr(export_jobs, "PROGRESS_SECONDS", 0.0)
    write = writers.CsvExportWriter.write

    def slow_write(self, page):
        write(self, page)
        time.sleep(0.25)

    monkeypatch.setattr(writers.CsvExportWriter, "write", slow_write)
    threads: list[threading.Thread] = []

    def run(job_id: int) -> None:
        from django.db import connection

        try:
            export_jobs.case_export_run(job_id=job_id)
        finally:
            connection.close()  # this thread's own, or the test database cannot be dropped

    def apply_async(*, args, **kwargs):
        thread = threading.Thread(target=run, args=(args[0],))
        thread.start()
        threads.append(thread)

    monkeypatch.setattr("labeling.tasks.case_export_task.apply_async", apply_async)
    yield
    for thread in threads:
        thread.join(timeout=30)


def test_admin_starts_an_export_watches_progress_and_downloads(
    live_server, guarded_page, slow_worker, tmp_path
) -> None:
    page = guarded_page
    project = ProjectFactory(name="Merchant risk", slug="risk")
    label = LabelClassFactory(project=project, name="legit")
    for i in range(CASES):
        CaseFactory(project=project, external_id=f"m-{i:03d}", given_label=label)
    CaseFactory(project=project, external_id="formula", text="=HYPERLINK(1)", given_label=label)
    admin = member(project, role=ProjectRole.ADMIN)
    log_in(page, live_server.url, admin.username)
    page.click("text=Export")
    page.wait_for_url(f"{live_server.url}/projects/risk/export/")
    page.select_option("#id_format", "csv")
    page.check("#id_provenance")
    page.click("#start-export")
    page.wait_for_url(f"{live_server.url}/projects/risk/export/*/")
    page.wait_for_function(
        "() => { const p = document.querySelector('#export-progress progress');"
        " return p && p.value > 0 && p.value < 100; }",
        timeout=20_000,
    )
    link = page.locator("a.download").first
    link.wait_for(timeout=30_000)
    assert "121 cases" in page.inner_text("#export-progress")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.startswith("risk-")
    saved = tmp_path / "downloaded.csv"
    download.save_as(saved)
    with open(saved, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == CASES + 1
    assert {r["text"] for r in rows if r["external_id"] == "formula"} == {"'=HYPERLINK(1)"}
    assert page.locator(".export-files li").count() == 3  # cases, annotations, manifest
