"""Bulk import: all or nothing, line-numbered problems, the same cases from CSV, JSONL, Parquet."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from active_learning.ml.hashing import content_hash
from labeling.models import (
    IMPORT_SOURCE,
    Annotation,
    Case,
    LabelClass,
    QueueItem,
    QueueStatus,
    ResolutionSource,
    ResolvedLabel,
)
from labeling.services.annotations import annotation_submit
from labeling.services.imports import Columns, case_import
from labeling.services.imports import report as msg
from labeling.services.queue import queue_claim_next
from labeling.splits import split_for
from tests.factories import (
    AnalystFactory,
    AnnotationFactory,
    CaseFactory,
    LabelClassFactory,
    ProjectFactory,
)
from workbench.core.models import AuditEvent

pytestmark = pytest.mark.django_db

ROWS = [
    {"id": "m1", "text": "Handmade mugs and bowls.", "label": "retail", "mcc": "5719"},
    {"id": "m2", "text": "Online casino with live roulette.", "label": "gambling", "mcc": "7995"},
    {"id": "m3", "text": "Café serving espresso, «crème».", "label": "", "mcc": "5814"},
]


@pytest.fixture
def project():
    project = ProjectFactory(split_seed=42, evaluation_fraction=0.3, classes_fixed=True)
    LabelClassFactory(project=project, name="retail", shortcut_key="1")
    LabelClassFactory(project=project, name="gambling", shortcut_key="2")
    return project


def write_csv(path: Path, rows: list[dict], fields: list[str] | None = None) -> Path:
    fields = fields or list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def snapshot(project) -> list[tuple]:
    return list(
        Case.objects.filter(project=project)
        .order_by("external_id")
        .values_list(
            "external_id", "text", "metadata", "given_label__name", "split", "content_hash"
        )
    )


def only_problem(report) -> msg.ImportProblem:
    assert not report.ok and report.created == 0
    assert len(report.errors) == 1, report.errors
    return report.errors[0]


def test_csv_import_writes_cases_with_metadata_split_and_hash(project, tmp_path) -> None:
    """Every column but id, text and label is metadata; a metadata column of JSON is unpacked."""
    rows = [{**r, "metadata": json.dumps({"country": "DE", "volume": 1200})} for r in ROWS]
    report = case_import(project=project, path=write_csv(tmp_path / "cases.csv", rows))
    assert report.ok and (report.rows, report.created) == (3, 3)
    case = Case.objects.get(project=project, external_id="m2")
    assert case.text == ROWS[1]["text"] and case.given_label.name == "gambling"
    assert case.metadata == {"country": "DE", "volume": 1200, "mcc": "7995"}
    assert case.content_hash == content_hash(case.text)
    assert case.split == split_for(split_seed=42, external_id="m2", evaluation_fraction=0.3)
    assert Case.objects.get(external_id="m3").given_label is None
    event = AuditEvent.objects.get(action="case.import")
    assert event.after["created"] == 3 and event.after["file"] == "cases.csv"


def test_csv_jsonl_and_parquet_give_the_same_cases(tmp_path) -> None:
    """The three formats import to identical cases."""
    snapshots = []
    rows = [{**r, "metadata": json.dumps({"volume": i * 10.5})} for i, r in enumerate(ROWS)]
    for name, writer in [
        ("a.csv", write_csv),
        ("a.jsonl", write_jsonl),
        ("a.parquet", write_parquet),
    ]:
        target = ProjectFactory(split_seed=7, evaluation_fraction=0.5)
        LabelClassFactory(project=target, name="retail", shortcut_key="1")
        LabelClassFactory(project=target, name="gambling", shortcut_key="2")
        report = case_import(project=target, path=writer(tmp_path / name, rows))
        assert report.ok, report.errors
        snapshots.append(snapshot(target))
    assert snapshots[0] == snapshots[1] == snapshots[2]
    assert len(snapshots[0]) == 3


def test_same_ids_get_the_same_split_in_any_file_order(project, tmp_path) -> None:
    """The split depends on (seed, id) only, never on the order of the file."""
    rows = [{"id": f"x{i}", "text": f"text {i}"} for i in range(300)]
    case_import(project=project, path=write_csv(tmp_path / "a.csv", rows))
    first = dict(Case.objects.values_list("external_id", "split"))
    Case.objects.all().delete()
    case_import(project=project, path=write_jsonl(tmp_path / "b.jsonl", rows[::-1]))
    assert dict(Case.objects.values_list("external_id", "split")) == first
    assert 40 < sum(s == "eval" for s in first.values()) < 140  # fraction 0.3 of 300


def test_bad_row_at_line_99999_leaves_the_database_unchanged(project, tmp_path) -> None:
    """An invalid row near the end of a 100,000-line file: nothing written, line named."""
    CaseFactory(project=project, external_id="existing")
    before = (snapshot(project), LabelClass.objects.count(), AuditEvent.objects.count())
    path = tmp_path / "big.csv"
    lines = ["id,text,label"] + [f"r{i},Merchant {i} sells mugs,retail" for i in range(2, 100_001)]
    lines[99_998] = "r99999,,retail"  # physical line 99,999: the text is missing
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = case_import(project=project, path=path)
    problem = only_problem(report)
    assert (problem.line, problem.field, problem.message) == (99_999, "text", msg.ERR_MISSING_TEXT)
    assert str(problem) == f"big.csv, line 99999, field 'text': {msg.ERR_MISSING_TEXT}"
    assert (snapshot(project), LabelClass.objects.count(), AuditEvent.objects.count()) == before


LONG = "x" * 100_001
BAD_CSV = [
    ("missing id", ",Some text,retail,", "id", msg.ERR_MISSING_ID),
    ("missing text", "b1,,retail,", "text", msg.ERR_MISSING_TEXT),
    ("duplicate id", "a1,Other text,retail,", "id", msg.ERR_DUPLICATE_ID.format(external_id="a1")),
    (
        "existing id",
        "old,Other text,retail,",
        "id",
        msg.ERR_EXISTING_ID.format(external_id="old"),
    ),
    (
        "label outside fixed classes",
        "b1,Guns and ammo,weapons,",
        "label",
        msg.ERR_UNKNOWN_LABEL.format(label="weapons", accepted="'retail', 'gambling'"),
    ),
    ("undecodable bytes", "b1,Caf\udce9 au lait,retail,", "text", msg.ERR_UNDECODABLE),
    (
        "text too long",
        f"b1,{LONG},retail,",
        "text",
        msg.ERR_TEXT_TOO_LONG.format(length=100_001, limit=100_000),
    ),
    (
        "metadata value too long",
        'b1,Some text,retail,"{""note"": ""' + "y" * 10_001 + '""}"',
        "note",
        msg.ERR_METADATA_TOO_LONG.format(key="note", length=10_001, limit=10_000),
    ),
    (
        "malformed line",
        "b1,Some text,retail,{},extra",
        "",
        msg.ERR_CSV_FIELDS.format(found=5, expected=4),
    ),
    (
        "malformed quoting",
        'b1,"Some" text,retail,',
        "",
        msg.ERR_CSV.format(problem="',' expected after '\"'"),
    ),
]


@pytest.mark.parametrize(
    ("kind", "bad_line", "field", "message"), BAD_CSV, ids=[b[0] for b in BAD_CSV]
)
def test_each_kind_of_bad_csv_row_has_its_own_message(
    project, tmp_path, kind, bad_line, field, message
) -> None:
    """Each problem is named with file, line and field, in words; nothing is written."""
    CaseFactory(project=project, external_id="old")
    path = tmp_path / "bad.csv"
    data = "id,text,label,metadata\na1,Some text,retail,{}\n" + bad_line + "\na2,Fine,retail,{}\n"
    path.write_bytes(data.encode("utf-8", errors="surrogateescape"))
    problem = only_problem(case_import(project=project, path=path))
    assert (problem.file, problem.line, problem.field, problem.message) == (
        "bad.csv",
        3,
        field,
        message,
    )
    assert Case.objects.filter(project=project).count() == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            b'{"id": "b1", "text": "x"',
            msg.ERR_MALFORMED_JSON.format(problem="Expecting ',' delimiter", column=25),
        ),
        (b'["b1", "x"]', msg.ERR_NOT_OBJECT.format(kind="an array")),
        (b'{"id": "b1", "text": "caf\xe9"}', msg.ERR_UNDECODABLE),
    ],
    ids=["not json", "not an object", "undecodable"],
)
def test_malformed_jsonl_lines_are_named(project, tmp_path, line, message) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": "a1", "text": "fine"}\n\n' + line + b"\n")
    problem = only_problem(case_import(project=project, path=path))
    assert (problem.line, problem.field, problem.message) == (3, "", message)


def test_parquet_problems_name_the_row(project, tmp_path) -> None:
    rows = [{"id": "a1", "text": "fine"}, {"id": "a2", "text": None}]
    report = case_import(project=project, path=write_parquet(tmp_path / "p.parquet", rows))
    problem = only_problem(report)
    assert str(problem) == f"p.parquet, row 2, field 'text': {msg.ERR_MISSING_TEXT}"


def test_only_the_first_100_problems_are_listed(project, tmp_path) -> None:
    rows = [{"id": "", "text": f"t{i}"} for i in range(150)]
    report = case_import(project=project, path=write_csv(tmp_path / "x.csv", rows))
    assert report.error_count == 150 and len(report.errors) == 100
    assert report.errors[-1].line == 101
    assert "(50 more not listed)" in report.summary()


def test_unknown_file_type_and_missing_columns(project, tmp_path) -> None:
    (tmp_path / "a.xlsx").write_text("x")
    problem = only_problem(case_import(project=project, path=tmp_path / "a.xlsx"))
    assert problem.message == msg.ERR_UNKNOWN_FORMAT.format(suffix=".xlsx")
    path = write_csv(tmp_path / "cols.csv", [{"key": "a", "body": "text"}])
    report = case_import(project=project, path=path)
    assert report.errors[0].message == msg.ERR_MISSING_COLUMN.format(column="id")
    report = case_import(project=project, path=path, columns=Columns(id="key", text="body"))
    assert report.ok and Case.objects.get(external_id="a").text == "text"


def test_open_classes_create_new_labels_with_free_shortcut_keys(project, tmp_path) -> None:
    """With open classes a new label becomes a class with the next free shortcut key."""
    project.classes_fixed = False
    project.save()
    rows = [
        {"id": "a", "text": "t", "label": "crypto"},
        {"id": "b", "text": "u", "label": "pharma"},
    ]
    report = case_import(project=project, path=write_csv(tmp_path / "o.csv", rows))
    assert report.ok and report.new_classes == ["crypto", "pharma"]
    keys = dict(LabelClass.objects.filter(project=project).values_list("name", "shortcut_key"))
    assert keys == {"retail": "1", "gambling": "2", "crypto": "3", "pharma": "4"}
    assert Case.objects.get(external_id="b").given_label.name == "pharma"


def test_update_makes_old_annotations_stale_and_is_audited(project, tmp_path) -> None:
    """A changed text gets a new hash; annotations on the old text stay but are stale."""
    case_import(project=project, path=write_csv(tmp_path / "v1.csv", ROWS))
    case = Case.objects.get(external_id="m1")
    annotation = AnnotationFactory(case=case)
    old_hash = case.content_hash
    rows = [dict(r) for r in ROWS]
    rows[0]["text"] = "Handmade mugs, bowls and knives."
    rows[1]["label"] = "retail"
    path = write_csv(tmp_path / "v2.csv", rows)

    refused = case_import(project=project, path=path)
    assert [p.message for p in refused.errors][:1] == [msg.ERR_EXISTING_ID.format(external_id="m1")]

    report = case_import(project=project, path=path, update=True)
    assert report.ok and (report.created, report.updated, report.unchanged) == (0, 2, 1)
    case.refresh_from_db()
    annotation.refresh_from_db()
    assert case.text == rows[0]["text"] and case.content_hash == content_hash(rows[0]["text"])
    assert annotation.content_hash == old_hash != case.content_hash  # stale, kept
    assert report.changed_case_ids == [case.pk]
    event = AuditEvent.objects.get(action="case.update", object_id=str(case.pk))
    assert event.before["content_hash"] == old_hash
    assert event.after["content_hash"] == case.content_hash
    relabelled = Case.objects.get(external_id="m2")
    assert relabelled.given_label.name == "retail"
    assert AuditEvent.objects.filter(action="case.update").count() == 2


def _label(case, analyst, name):
    label = LabelClass.objects.get(project=case.project, name=name)
    return annotation_submit(
        item_or_case=case, analyst=analyst, submission_id=uuid.uuid4(), label=label
    )


def test_update_recomputes_the_resolved_labels_of_changed_cases(project, tmp_path) -> None:
    """A new text drops the analysts' label from the resolution; a new given label shows in it."""
    case_import(project=project, path=write_csv(tmp_path / "v1.csv", ROWS))
    m1, m2, m3 = (Case.objects.get(external_id=e) for e in ("m1", "m2", "m3"))
    analyst = AnalystFactory()
    annotation = _label(m1, analyst, "gambling")
    assert ResolvedLabel.objects.get(case=m1).source == ResolutionSource.ANNOTATION
    ResolvedLabel.objects.create(case=m2, label=m2.given_label, source=ResolutionSource.GIVEN)
    reviewed = ResolvedLabel.objects.create(
        case=m3, label=LabelClass.objects.get(name="gambling"), source=ResolutionSource.REVIEW
    )
    rows = [dict(r) for r in ROWS]
    rows[0]["text"] = "Handmade mugs, bowls and knives."
    rows[1]["label"] = "retail"
    rows[2]["text"] = "Café serving espresso and cards."
    report = case_import(project=project, path=write_csv(tmp_path / "v2.csv", rows), update=True)
    assert report.ok and report.updated == 3

    annotation.refresh_from_db()
    m1.refresh_from_db()
    assert annotation.superseded_at is None and annotation.content_hash != m1.content_hash
    resolved = ResolvedLabel.objects.get(case=m1)
    assert (resolved.label.name, resolved.source) == ("retail", ResolutionSource.GIVEN)
    assert ResolvedLabel.objects.get(case=m2).label.name == "retail"
    assert ResolvedLabel.objects.get(case=m3).source == ResolutionSource.REVIEW
    assert ResolvedLabel.objects.get(case=m3).label == reviewed.label
    assert (
        AuditEvent.objects.filter(action="resolution.change", object_id=str(resolved.pk)).count()
        == 2
    )


def test_a_case_whose_text_changed_goes_back_to_the_analyst_who_labelled_it(
    project, tmp_path
) -> None:
    """The old done item becomes history (cancelled), so the same analyst can claim the case."""
    case_import(project=project, path=write_csv(tmp_path / "v1.csv", ROWS))
    analyst = AnalystFactory()
    m1 = Case.objects.get(external_id="m1")
    done = []
    for _ in range(10):
        current = queue_claim_next(project=project, analyst=analyst).current
        if current is None:
            break
        done.append(current.case_id)
        _label(current.case, analyst, "retail")
    assert m1.pk in done
    old = QueueItem.objects.get(case=m1, assigned_to=analyst)
    rows = [dict(r) for r in ROWS]
    rows[0]["text"] = "Handmade mugs, bowls and knives."
    report = case_import(project=project, path=write_csv(tmp_path / "v2.csv", rows), update=True)
    assert report.ok and report.changed_case_ids == [m1.pk]
    old.refresh_from_db()
    assert old.status == QueueStatus.CANCELLED and old.assigned_to == analyst
    assert old.completed_at is not None  # kept as history
    claimed = queue_claim_next(project=project, analyst=analyst).current
    assert claimed is not None and claimed.case_id == m1.pk and claimed.pk != old.pk
    annotation = _label(claimed.case, analyst, "gambling")
    m1.refresh_from_db()
    assert annotation.content_hash == m1.content_hash and annotation.queue_item == claimed
    assert Annotation.objects.filter(case=m1).count() == 2
    assert ResolvedLabel.objects.get(case=m1).label.name == "gambling"


def test_import_cases_command(project, tmp_path, capsys) -> None:
    path = write_csv(tmp_path / "c.csv", ROWS)
    call_command("import_cases", project.slug, str(path), verbosity=0)
    assert Case.objects.filter(project=project).count() == 3
    with pytest.raises(CommandError, match="Nothing imported: 3 problems"):
        call_command("import_cases", project.slug, str(path), verbosity=0)
    assert "c.csv, line 2, field 'id'" in capsys.readouterr().err


def sources(project) -> dict[str, str]:
    return dict(
        Case.objects.filter(project=project).values_list("external_id", "given_label_source")
    )


SOURCED = [
    {**ROWS[0], "label_source": "mcc_rules_v2"},
    {**ROWS[1], "label_source": "  vendor_feed  "},
    {**ROWS[2], "label_source": ""},
]


@pytest.mark.parametrize("writer", [write_csv, write_jsonl, write_parquet])
def test_the_label_source_column_is_stored_per_case(project, tmp_path, writer) -> None:
    """The source is stripped and kept per case (not as metadata); an empty one is `import`."""
    suffix = {write_csv: "csv", write_jsonl: "jsonl", write_parquet: "parquet"}[writer]
    report = case_import(project=project, path=writer(tmp_path / f"s.{suffix}", SOURCED))
    assert report.ok, report.errors
    assert sources(project) == {"m1": "mcc_rules_v2", "m2": "vendor_feed", "m3": IMPORT_SOURCE}
    assert Case.objects.get(external_id="m1").metadata == {"mcc": "5719"}


def test_without_a_label_source_column_every_case_is_from_the_import(project, tmp_path) -> None:
    """A file without the column (a JSONL record without the key, a null) gives `import`."""
    rows = [ROWS[0], {**ROWS[1], "label_source": None}]
    report = case_import(project=project, path=write_jsonl(tmp_path / "plain.jsonl", rows))
    assert report.ok and sources(project) == {"m1": IMPORT_SOURCE, "m2": IMPORT_SOURCE}


def test_a_renamed_label_source_column(project, tmp_path, capsys) -> None:
    """The column is named like the others: `Columns(label_source=...)` or the command option."""
    rows = [{"id": r["id"], "text": r["text"], "given_by": "ops_team"} for r in ROWS[:2]]
    path = write_csv(tmp_path / "by.csv", rows)
    report = case_import(project=project, path=path, columns=Columns(label_source="given_by"))
    assert report.ok and set(sources(project).values()) == {"ops_team"}
    assert "given_by" not in Case.objects.get(external_id="m1").metadata
    Case.objects.all().delete()
    call_command(
        "import_cases", project.slug, str(path), "--label-source-column=given_by", verbosity=0
    )
    assert set(sources(project).values()) == {"ops_team"}


def test_a_too_long_label_source_is_named_and_nothing_is_written(project, tmp_path) -> None:
    """65 characters after stripping: file, line and field named; no case written."""
    rows = [dict(r) for r in SOURCED]
    rows[0]["label_source"] = " " + "v" * 64 + " "  # 64 after stripping: fine
    rows[1]["label_source"] = "v" * 65
    path = write_csv(tmp_path / "long.csv", rows)
    problem = only_problem(case_import(project=project, path=path))
    message = msg.ERR_LABEL_SOURCE_TOO_LONG.format(length=65, limit=msg.MAX_LABEL_SOURCE_CHARS)
    assert str(problem) == f"long.csv, line 3, field 'label_source': {message}"
    assert not Case.objects.filter(project=project).exists()
    assert not AuditEvent.objects.filter(action="case.import").exists()
    assert Case._meta.get_field("given_label_source").max_length == msg.MAX_LABEL_SOURCE_CHARS


def test_a_label_source_that_is_not_a_string_is_a_problem(project, tmp_path) -> None:
    rows = [{**ROWS[0], "label_source": ["vendor"]}]
    problem = only_problem(
        case_import(project=project, path=write_jsonl(tmp_path / "l.jsonl", rows))
    )
    expected = msg.ERR_NOT_SCALAR.format(what="label source", kind="a list")
    assert (problem.line, problem.field, problem.message) == (1, "label_source", expected)


def test_a_reimport_that_changes_only_the_source_updates_it_and_nothing_else(
    project, tmp_path
) -> None:
    """A new source is written and audited; the case is not queued again, its resolution and
    annotations stay as they were."""
    case_import(project=project, path=write_csv(tmp_path / "v1.csv", SOURCED))
    m1 = Case.objects.get(external_id="m1")
    annotation = _label(m1, AnalystFactory(), "gambling")
    queue = list(QueueItem.objects.order_by("pk").values_list("pk", "case_id", "status"))
    resolved = list(ResolvedLabel.objects.order_by("pk").values())
    events = AuditEvent.objects.filter(action="resolution.change").count()
    rows = [dict(r) for r in SOURCED]
    rows[0]["label_source"] = "ops_team"
    report = case_import(project=project, path=write_csv(tmp_path / "v2.csv", rows), update=True)
    assert report.ok and (report.updated, report.unchanged) == (1, 2)
    assert report.changed_case_ids == []
    assert sources(project) == {"m1": "ops_team", "m2": "vendor_feed", "m3": IMPORT_SOURCE}
    assert list(QueueItem.objects.order_by("pk").values_list("pk", "case_id", "status")) == queue
    assert list(ResolvedLabel.objects.order_by("pk").values()) == resolved
    assert AuditEvent.objects.filter(action="resolution.change").count() == events
    annotation.refresh_from_db()
    m1.refresh_from_db()
    assert annotation.superseded_at is None and annotation.content_hash == m1.content_hash
    event = AuditEvent.objects.get(action="case.update", object_id=str(m1.pk))
    assert (event.before["given_label_source"], event.after["given_label_source"]) == (
        "mcc_rules_v2",
        "ops_team",
    )


def test_a_reimport_without_sources_keeps_them_unless_the_label_changes(project, tmp_path) -> None:
    """No source in the file: a kept label keeps its source, a new label is from the import."""
    case_import(project=project, path=write_csv(tmp_path / "v1.csv", SOURCED))
    rows = [dict(r) for r in ROWS]
    rows[1]["label"] = "retail"
    report = case_import(project=project, path=write_csv(tmp_path / "v2.csv", rows), update=True)
    assert report.ok and (report.updated, report.unchanged) == (1, 2)
    assert sources(project) == {"m1": "mcc_rules_v2", "m2": IMPORT_SOURCE, "m3": IMPORT_SOURCE}


@pytest.mark.postgres
def test_copy_path_on_postgresql(project, tmp_path) -> None:
    """PostgreSQL takes new rows through COPY; update and rollback behave as on SQLite."""
    rows = [{"id": f"p{i}", "text": f"Merchant {i}", "label": "retail"} for i in range(5000)]
    rows[17]["label_source"] = "vendor_feed"
    report = case_import(project=project, path=write_jsonl(tmp_path / "p.jsonl", rows))
    assert report.ok and report.created == 5000
    case = Case.objects.get(external_id="p17")
    assert case.content_hash == content_hash("Merchant 17") and case.given_label.name == "retail"
    assert case.given_label_source == "vendor_feed"
    assert Case.objects.get(external_id="p18").given_label_source == IMPORT_SOURCE
    rows.append({"id": "p1", "text": "dup"})
    report = case_import(project=project, path=write_jsonl(tmp_path / "q.jsonl", rows))
    assert report.error_count == 5001 and Case.objects.count() == 5000


def test_a_failure_during_the_write_pass_rolls_everything_back(
    project, tmp_path, monkeypatch
) -> None:
    """All or nothing also holds when the write pass itself fails, after rows went in."""
    from labeling.services.imports import writer

    project.classes_fixed = False
    project.save()

    def explode(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "audit_record", explode)
    rows = [*ROWS, {"id": "m4", "text": "Vapes", "label": "vaping", "mcc": ""}]
    with pytest.raises(RuntimeError):
        case_import(project=project, path=write_csv(tmp_path / "w.csv", rows))
    assert not Case.objects.filter(project=project).exists()
    assert not LabelClass.objects.filter(project=project, name="vaping").exists()


@pytest.mark.django_db
def test_small_files_import_on_the_short_queue_and_large_ones_on_the_default(
    settings, tmp_path
) -> None:
    from labeling.services.imports.jobs import _queue_for
    from workbench.core.models import Job

    path = tmp_path / "cases.csv"
    path.write_bytes(b"id,text\n" + b"m1,a merchant\n" * 10)
    job = Job.objects.create(kind="import", params={"path": str(path)})
    settings.IMPORT_SHORT_MAX_BYTES = path.stat().st_size
    assert _queue_for(job.pk) == settings.SHORT_QUEUE == "short"
    settings.IMPORT_SHORT_MAX_BYTES = path.stat().st_size - 1
    assert _queue_for(job.pk) == settings.DEFAULT_QUEUE == "celery"
