"""Bad files an attacker (or a spreadsheet) sends: each is answered by the file/line/field report,
the report can be saved and shown, and nothing is written. Also: empty files, missing columns,
other separators, labels named as shown, and bounded columns."""

from __future__ import annotations

import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from labeling.models import Case, LabelClass
from labeling.services.imports import Columns, case_import
from labeling.services.imports import report as msg
from labeling.services.imports.jobs import case_import_run, case_import_upload
from tests.factories import LabelClassFactory, ProjectFactory
from workbench.core.models import JobStatus

pytestmark = pytest.mark.django_db

DEEP = 100_000
HUGE_INT = "7" * 5000

# (name, file name, bytes, expected (line, field, message) of the only problem)
BAD_FILES = [
    (
        "csv header not utf-8",
        "a.csv",
        b"id,text,caf\xe9\nm1,Mugs,x\n",
        (1, "caf\\xe9", msg.ERR_HEADER_UNDECODABLE),
    ),
    (
        "nul in a metadata key",
        "a.jsonl",
        b'{"id": "m1", "text": "Mugs", "k\\u0000ey": "v"}\n',
        (1, "k\\u0000ey", msg.ERR_KEY_NUL),
    ),
    (
        "lone surrogate in a metadata key",
        "a.jsonl",
        b'{"id": "m1", "text": "Mugs", "k\\ud800": "v"}\n',
        (1, "k\\ud800", msg.ERR_KEY_UNDECODABLE),
    ),
    (
        "nul in a key of the metadata column",
        "a.csv",
        b'id,text,metadata\nm1,Mugs,"{""a\\u0000"": 1}"\n',
        (2, "a\\u0000", msg.ERR_KEY_NUL),
    ),
    (
        "deeply nested json",
        "a.jsonl",
        b'{"id": "m1", "text": "Mugs", "m": ' + b"[" * DEEP + b"]" * DEEP + b"}\n",
        (1, "", msg.ERR_TOO_DEEP),
    ),
    (
        "nested deeper than metadata may",
        "a.jsonl",
        b'{"id": "m1", "text": "Mugs", "m": ' + b"[" * 50 + b"]" * 50 + b"}\n",
        (1, "m", msg.ERR_METADATA_TOO_DEEP.format(key="m", limit=msg.MAX_METADATA_DEPTH)),
    ),
    (
        "integer of 5,000 digits",
        "a.jsonl",
        b'{"id": "m1", "text": "Mugs", "n": ' + HUGE_INT.encode() + b"}\n",
        (1, "", msg.ERR_NUMBER_TOO_LONG),
    ),
    (
        "utf-16 csv",
        "a.csv",
        "id,text\nm1,Mugs\n".encode("utf-16"),
        (1, "", msg.ERR_UTF16.format(encoding="UTF-16")),
    ),
    (
        "utf-16 jsonl",
        "a.jsonl",
        '{"id": "m1", "text": "Mugs"}\n'.encode("utf-16"),
        (1, "", msg.ERR_UTF16.format(encoding="UTF-16")),
    ),
    (
        "utf-16 csv without its byte-order mark",
        "a.csv",
        "id,text\nm1,Mugs\n".encode("utf-16-le"),
        (1, "i\\u0000d\\u0000", msg.ERR_HEADER_NUL),
    ),
    ("empty file", "a.csv", b"", (1, "", msg.ERR_NO_ROWS)),
    ("header alone", "a.csv", b"id,text,label\n", (1, "", msg.ERR_NO_ROWS)),
    ("empty jsonl", "a.jsonl", b"\n\n", (1, "", msg.ERR_NO_ROWS)),
    (
        "20,000 columns",
        "a.csv",
        (",".join(["id", "text", *(f"c{i}" for i in range(20_000))]) + "\nm1,Mugs\n").encode(),
        (1, "", msg.ERR_TOO_MANY_COLUMNS.format(count=20_002, limit=msg.MAX_COLUMNS)),
    ),
    (
        "a json line with 2,000 keys",
        "a.jsonl",
        json.dumps({"id": "m1", "text": "Mugs", **{f"k{i}": i for i in range(2000)}}).encode(),
        (1, "", msg.ERR_TOO_MANY_KEYS.format(count=2000, limit=msg.MAX_COLUMNS)),
    ),
]


@pytest.fixture
def project(settings, tmp_path):
    settings.WORKBENCH_DATA_DIR = tmp_path / "data"
    project = ProjectFactory(classes_fixed=True)
    LabelClassFactory(project=project, name="retail", display_name="Retail shop", shortcut_key="1")
    LabelClassFactory(project=project, name="gambling", shortcut_key="2")
    return project


@pytest.mark.parametrize(
    ("kind", "name", "content", "expected"), BAD_FILES, ids=[b[0] for b in BAD_FILES]
)
def test_each_bad_file_gets_its_report_saved_and_shown(
    admin_client, project, kind, name, content, expected
) -> None:
    """Through the upload page's job: the report is stored (JSON column), the job failed, the
    page shows the problem; nothing is written."""
    job = case_import_upload(
        project=project, upload=SimpleUploadedFile(name, content), columns=Columns()
    )
    started = time.perf_counter()
    report = case_import_run(job_id=job.pk)
    assert time.perf_counter() - started < 10
    assert report is not None and not report.ok
    assert [(p.line, p.field, p.message) for p in report.errors] == [expected]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED  # not "Succeeded"
    assert job.result["errors"][0]["message"] == expected[2]
    page = admin_client.get(reverse("labeling:case_import_job", args=[project.slug, job.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "Failed" in html and "Succeeded" not in html
    assert Case.objects.count() == 0


def test_a_missing_column_is_reported_once(project, tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("key,body\n" + "".join(f"m{i},Mugs {i}\n" for i in range(50)))
    report = case_import(project=project, path=path)
    problems = [(p.line, p.field, p.message) for p in report.errors]
    assert problems == [
        (1, "id", msg.ERR_MISSING_COLUMN.format(column="id")),
        (1, "text", msg.ERR_MISSING_COLUMN.format(column="text")),
    ]
    assert report.error_count == 2
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("".join(json.dumps({"id": f"m{i}", "body": "x"}) + "\n" for i in range(50)))
    report = case_import(project=project, path=jsonl)
    assert [(p.line, p.field, p.message) for p in report.errors] == [
        (1, "text", msg.ERR_MISSING_KEY.format(column="text"))
    ]
    assert report.error_count == 1


def test_a_key_missing_from_some_jsonl_lines_is_named_per_line(project, tmp_path) -> None:
    path = tmp_path / "a.jsonl"
    rows = [{"id": "m1", "text": "Mugs"}, {"id": "m2"}, {"id": "m3", "text": "Bowls"}, {"id": "m4"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = case_import(project=project, path=path)
    assert [(p.line, p.field, p.message) for p in report.errors] == [
        (2, "text", msg.ERR_MISSING_TEXT),
        (4, "text", msg.ERR_MISSING_TEXT),
    ]
    assert report.error_count == 2


@pytest.mark.parametrize("separator", [";", "\t"], ids=["semicolons", "tabs"])
def test_semicolon_and_tab_separated_files_are_read(project, tmp_path, separator) -> None:
    path = tmp_path / "a.csv"
    lines = [["id", "text", "label"], ["m1", "Mugs, bowls", "retail"], ["m2", "Poker", "gambling"]]
    path.write_text("".join(separator.join(line) + "\n" for line in lines), encoding="utf-8")
    report = case_import(project=project, path=path)
    assert report.ok, report.errors
    assert Case.objects.get(external_id="m1").text == "Mugs, bowls"
    assert Case.objects.get(external_id="m2").given_label.name == "gambling"


def test_labels_match_the_name_as_shown_and_the_refusal_lists_them(project, tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,text,label\nm1,Mugs,Retail shop\nm2,Poker,gambling\n")
    report = case_import(project=project, path=path)
    assert report.ok, report.errors
    assert Case.objects.get(external_id="m1").given_label.name == "retail"
    bad = tmp_path / "b.csv"
    bad.write_text("id,text,label\nm3,Guns,weapons\n")
    problem = case_import(project=project, path=bad).errors[0]
    accepted = "'retail' or 'Retail shop', 'gambling'"
    assert problem.message == msg.ERR_UNKNOWN_LABEL.format(label="weapons", accepted=accepted)


def test_open_classes_take_a_name_as_shown_as_the_existing_class(project, tmp_path) -> None:
    project.classes_fixed = False
    project.save()
    path = tmp_path / "a.csv"
    path.write_text("id,text,label\nm1,Mugs,Retail shop\n")
    report = case_import(project=project, path=path)
    assert report.ok and report.new_classes == []
    assert LabelClass.objects.filter(project=project).count() == 2


def test_the_duplicate_header_check_is_linear(project, tmp_path) -> None:
    """1,000 columns (the most allowed), one duplicated at the end: found at once."""
    names = ["id", "text", *(f"c{i}" for i in range(997)), "c5"]
    path = tmp_path / "a.csv"
    path.write_text(",".join(names) + "\n" + ",".join(["m1", "Mugs", *["x"] * 998]) + "\n")
    started = time.perf_counter()
    report = case_import(project=project, path=path)
    assert time.perf_counter() - started < 2
    problem = report.errors[0]
    assert (problem.line, problem.field) == (1, "c5")
    assert problem.message == msg.ERR_DUPLICATE_COLUMN.format(column="c5")
