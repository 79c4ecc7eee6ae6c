"""The case export: every column against a hand-built project, CSV formula neutralisation, the
round trip through the import command in all three formats, one snapshot, the audit event."""

from __future__ import annotations

import csv
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.db import connection, transaction

from active_learning.ml.hashing import content_hash
from active_learning.models import LabelIssue, ModelStatus, ModelVersion, Prediction
from labeling.models import AnnotationSource, Case, ResolutionSource, ResolvedLabel, Split
from labeling.services.exports import AUDIT_ACTION, ExportOptions, case_export
from labeling.services.exports.manifest import export_manifest_for, file_sha256
from labeling.services.exports.schema import (
    ANNOTATION_CSV_NAMES,
    CASE_NAMES,
    HEADER_PREFIX,
    PARQUET_MARKER,
    PROVENANCE_COLUMN,
)
from labeling.services.exports.writers import neutralise, unneutralise
from tests.factories import (
    AnalystFactory,
    AnnotationFactory,
    CaseFactory,
    LabelClassFactory,
    ProjectFactory,
)
from workbench.core.models import AuditEvent

pytestmark = pytest.mark.django_db

FORMULAS = [
    "=HYPERLINK('http://x','click')",
    "+41 sells phones",
    "-5% discount store",
    "@SUM(A1:A2) bakery",
    "\tTabbed florist",
    "\rCarriage florist",
    "'quoted' tea shop",
]


def _case(project, external_id, text="A merchant selling mugs.", **fields):
    return CaseFactory(
        project=project,
        external_id=external_id,
        text=text,
        content_hash=content_hash(text),
        **fields,
    )


@pytest.fixture
def world():
    """A small project with a resolved label of every source, flags, a stale and a superseded
    annotation, a label issue and a champion's predictions."""
    project = ProjectFactory(slug="shop")
    legit = LabelClassFactory(project=project, name="legit", shortcut_key="1")
    weapons = LabelClassFactory(project=project, name="weapons", shortcut_key="2")
    ann = AnalystFactory(username="ann")
    bob = AnalystFactory(username="bob")
    cases = {}
    # c-given: never resolved, the given label stands
    cases["given"] = _case(project, "c-given", given_label=legit, metadata={"country": "DE"})
    # c-annotation: one analyst relabelled it
    c = cases["annotation"] = _case(project, "c-annotation", given_label=legit)
    AnnotationFactory(case=c, annotator=ann, label=weapons, duration_ms=1200, comment="gun shop")
    ResolvedLabel.objects.create(
        case=c, label=weapons, source=ResolutionSource.ANNOTATION, agreement=1.0
    )
    # c-consensus: two analysts, Dawid-Skene's posterior
    c = cases["consensus"] = _case(project, "c-consensus", given_label=weapons)
    AnnotationFactory(case=c, annotator=ann, label=legit)
    AnnotationFactory(case=c, annotator=bob, label=weapons)
    ResolvedLabel.objects.create(
        case=c, label=weapons, source=ResolutionSource.CONSENSUS, confidence=0.91, agreement=0.5
    )
    # c-review: a reviewer confirmed, after a superseded first answer
    c = cases["review"] = _case(project, "c-review", given_label=weapons)
    first = AnnotationFactory(case=c, annotator=ann, label=legit)
    second = AnnotationFactory(
        case=c, annotator=ann, label=weapons, source=AnnotationSource.REVIEW, noise_flag=False
    )
    first.superseded_by, first.superseded_at = second, datetime(2026, 1, 2, tzinfo=UTC)
    first.save()
    ResolvedLabel.objects.create(case=c, label=weapons, source=ResolutionSource.REVIEW)
    # c-adjudicated
    c = cases["adjudicated"] = _case(project, "c-adjudicated", given_label=weapons)
    AnnotationFactory(case=c, annotator=bob, label=legit, source=AnnotationSource.ADJUDICATION)
    ResolvedLabel.objects.create(
        case=c, label=legit, source=ResolutionSource.ADJUDICATED, confidence=1.0
    )
    # c-excluded: a reviewer took it out of the dataset
    c = cases["excluded"] = _case(project, "c-excluded", given_label=legit)
    AnnotationFactory(
        case=c, annotator=bob, exclude=True, exclude_reason="duplicate merchant", source="review"
    )
    ResolvedLabel.objects.create(case=c, label=None, source=ResolutionSource.REVIEW, excluded=True)
    # c-eval: evaluation split, a doubtful given label, a noise flag
    c = cases["eval"] = _case(project, "c-eval", given_label=legit, split=Split.EVAL)
    AnnotationFactory(case=c, annotator=ann, label=None, noise_flag=True, ambiguous=True)
    ResolvedLabel.objects.create(case=c, label=legit, doubtful=True)
    # c-stale: the only annotation was made on an older text
    c = cases["stale"] = _case(project, "c-stale", given_label=legit)
    AnnotationFactory(case=c, annotator=ann, label=weapons, content_hash="old-text-hash")
    # the model side: a champion v3 scored some cases; the detector doubts one label
    champion = ModelVersion.objects.create(project=project, number=3, status=ModelStatus.CHAMPION)
    older = ModelVersion.objects.create(project=project, number=2, status=ModelStatus.RETIRED)
    Prediction.objects.create(
        case=cases["given"], model_version=champion, predicted_label=weapons, confidence=0.73
    )
    Prediction.objects.create(
        case=cases["given"], model_version=older, predicted_label=legit, confidence=0.6
    )
    Prediction.objects.create(
        case=cases["eval"], model_version=champion, predicted_label=legit, confidence=0.88
    )
    LabelIssue.objects.create(
        project=project,
        case=cases["given"],
        given_label=legit,
        suggested_label=weapons,
        suggested_p=0.8,
        score=0.8,
        self_confidence=0.2,
    )
    # another project's case never shows
    _case(ProjectFactory(), "c-other")
    return {"project": project, "cases": cases, "legit": legit, "weapons": weapons, "ann": ann}


def _jsonl(path: Path) -> dict[str, dict]:
    with open(path, encoding="utf-8") as file:
        return {row["external_id"]: row for row in map(json.loads, file)}


def _export(project, tmp_path, fmt="jsonl", **options):
    path = tmp_path / f"out.{fmt}"
    return case_export(project=project, fmt=fmt, path=path, options=ExportOptions(**options))


def test_every_column_against_a_hand_built_project(world, tmp_path) -> None:
    """Each column holds what the hand-built rows say; class names, never ids."""
    result = _export(world["project"], tmp_path, include_excluded=True)
    rows = _jsonl(result.path)
    assert set(rows) == {
        "c-given",
        "c-annotation",
        "c-consensus",
        "c-review",
        "c-adjudicated",
        "c-excluded",
        "c-eval",
        "c-stale",
    }
    assert all(list(row) == list(CASE_NAMES) for row in rows.values())
    given = rows["c-given"]
    assert given["text"] == "A merchant selling mugs."
    assert given["metadata"] == {"country": "DE"}
    assert given["split"] == "pool"
    assert (given["given_label"], given["given_label_source"]) == ("legit", "import")
    assert (given["final_label"], given["final_label_source"]) == ("legit", "given")
    assert given["confidence"] is None and given["agreement"] is None
    assert (given["label_issue_score"], given["suggested_label"]) == (0.8, "weapons")
    assert (given["suggested_probability"], given["label_issue_flagged"]) == (0.8, False)
    assert given["suggested_by"] == ""  # scored, flagged by no view
    assert (given["predicted_label"], given["predicted_probability"]) == ("weapons", 0.73)
    assert given["model_version"] == 3  # the champion's, never the retired version's
    assert given["analyst_labels"] == 0
    stored = Case.objects.get(external_id="c-given").changed_at
    assert datetime.fromisoformat(given["changed_at"]) == stored

    a = rows["c-annotation"]
    assert (a["final_label"], a["final_label_source"], a["agreement"]) == (
        "weapons",
        "annotation",
        1.0,
    )
    assert a["analyst_labels"] == 1 and a["predicted_label"] is None and a["model_version"] is None
    assert a["label_issue_score"] is None and a["label_issue_flagged"] is None  # never scored
    assert a["suggested_probability"] is None and a["suggested_by"] is None
    c = rows["c-consensus"]
    assert (c["final_label_source"], c["confidence"], c["agreement"]) == ("consensus", 0.91, 0.5)
    assert c["analyst_labels"] == 2 and c["given_label"] == "weapons"
    r = rows["c-review"]
    assert (r["final_label"], r["final_label_source"], r["analyst_labels"]) == (
        "weapons",
        "review",
        1,  # the superseded first answer does not count
    )
    d = rows["c-adjudicated"]
    assert (d["final_label"], d["final_label_source"], d["confidence"]) == (
        "legit",
        "adjudicated",
        1.0,
    )
    x = rows["c-excluded"]
    assert (x["excluded"], x["excluded_reason"], x["final_label"]) == (
        True,
        "duplicate merchant",
        None,
    )
    e = rows["c-eval"]
    assert (e["split"], e["doubtful"], e["excluded"], e["analyst_labels"]) == (
        "eval",
        True,
        False,
        0,  # a flag without a label is no label
    )
    assert (e["predicted_label"], e["predicted_probability"]) == ("legit", 0.88)
    s = rows["c-stale"]
    assert (s["stale"], s["analyst_labels"]) == (True, 0)
    assert not any(row["stale"] for key, row in rows.items() if key != "c-stale")
    assert result.rows == 8 and result.manifest["champion_version"] == 3


def test_the_three_formats_carry_the_same_rows(world, tmp_path) -> None:
    """CSV, JSONL and Parquet hold the same values (CSV as text, Parquet typed)."""
    project = world["project"]
    jsonl = _jsonl(_export(project, tmp_path, "jsonl").path)
    table = pq.read_table(_export(project, tmp_path, "parquet").path)
    assert table.schema.metadata[PARQUET_MARKER] == b"1"
    assert table.column_names == list(CASE_NAMES)
    parquet = {row["external_id"]: row for row in table.to_pylist()}
    with open(_export(project, tmp_path, "csv").path, encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames or ()) == CASE_NAMES
        csv_rows = {row["external_id"]: row for row in reader}
    assert set(jsonl) == set(parquet) == set(csv_rows)
    assert "c-excluded" not in jsonl  # excluded cases stay out by default
    for key, row in jsonl.items():
        p, c = parquet[key], csv_rows[key]
        assert json.loads(p["metadata"]) == row["metadata"] == json.loads(c["metadata"])
        assert p["changed_at"].isoformat() == row["changed_at"] == c["changed_at"]
        for name in CASE_NAMES:
            if name in ("metadata", "changed_at"):
                continue
            assert p[name] == row[name], name
            expected = row[name]
            if isinstance(expected, bool):
                expected = "true" if expected else "false"
            assert c[name] == ("" if expected is None else str(expected)), name


def test_case_and_split_filters(world, tmp_path) -> None:
    project = world["project"]

    def ids(**options):
        return set(_jsonl(_export(project, tmp_path, **options).path))

    assert ids(split="eval") == {"c-eval"}
    assert "c-eval" not in ids(split="pool")
    assert ids(cases="labelled") == {"c-annotation", "c-consensus", "c-review", "c-adjudicated"}
    assert ids(cases="changed") == {"c-annotation", "c-adjudicated"}
    assert ids(cases="changed", include_excluded=True) == {
        "c-annotation",
        "c-adjudicated",
        "c-excluded",
    }
    assert ids(cases="excluded") == {"c-excluded"}


def test_provenance_nested_and_as_a_second_csv(world, tmp_path) -> None:
    """Every annotation, superseded ones too, with who, what, flags and what was shown."""
    project = world["project"]
    rows = _jsonl(_export(project, tmp_path, provenance=True).path)
    review = rows["c-review"][PROVENANCE_COLUMN]
    assert [(a["annotator"], a["label"], a["superseded"]) for a in review] == [
        ("ann", "legit", True),
        ("ann", "weapons", False),
    ]
    note = rows["c-annotation"][PROVENANCE_COLUMN][0]
    assert (note["comment"], note["duration_ms"], note["shown"]) == ("gun shop", 1200, {})
    flag = rows["c-eval"][PROVENANCE_COLUMN][0]
    assert (flag["noise_flag"], flag["ambiguous"], flag["label"]) == (True, True, None)
    assert rows["c-stale"][PROVENANCE_COLUMN][0]["stale"] is True
    assert rows["c-given"][PROVENANCE_COLUMN] == []

    table = pq.read_table(_export(project, tmp_path, "parquet", provenance=True).path)
    nested = {r["external_id"]: r[PROVENANCE_COLUMN] for r in table.to_pylist()}
    assert [a["label"] for a in nested["c-review"]] == ["legit", "weapons"]

    result = _export(project, tmp_path, "csv", provenance=True)
    companion = result.files[1]
    assert companion.name == "out.annotations.csv"
    with open(companion, encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames or ()) == ANNOTATION_CSV_NAMES
        found = [(r["external_id"], r["label"], r["superseded"]) for r in reader]
    assert ("c-review", "legit", "true") in found and len(found) == 8
    assert result.manifest["annotations"] == 8
    assert result.manifest["files"][1]["sha256"] == file_sha256(companion)


def test_formula_cells_are_neutralised(world, tmp_path) -> None:
    """No text cell of the CSV starts a spreadsheet formula."""
    project = world["project"]
    for index, text in enumerate(FORMULAS):
        _case(project, f"=f{index}", text=text, metadata={"note": "=1+1"})
    path = _export(project, tmp_path, "csv").path
    with open(path, encoding="utf-8", newline="") as file:
        cells = [cell for row in csv.reader(file) for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert "'=HYPERLINK('http://x','click')" in cells
    assert "'-5% discount store" in cells and "'=f0" in cells
    assert "''quoted' tea shop" in cells
    for text in ["plain", "", *FORMULAS]:
        assert unneutralise(neutralise(text)) == text


def test_manifest_beside_the_file(world, tmp_path) -> None:
    result = _export(world["project"], tmp_path, "parquet")
    manifest = json.loads(result.manifest_path.read_text())
    assert result.manifest_path.name == "out.parquet.manifest.json"
    assert manifest["rows"] == 7 and manifest["sha256"] == file_sha256(result.path)
    assert manifest["project"]["slug"] == "shop" and manifest["champion_version"] == 3
    assert manifest["options"] == ExportOptions().to_json()
    assert export_manifest_for(result.path) == manifest
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    with open(result.path, "ab") as file:
        file.write(b"x")
    assert export_manifest_for(result.path) is None  # changed since: not the export any more


def test_a_failed_export_leaves_no_file(world, tmp_path, monkeypatch) -> None:
    from labeling.services.exports import writers

    def boom(self, page):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writers.CsvExportWriter, "write", boom)
    with pytest.raises(RuntimeError):
        _export(world["project"], tmp_path, "csv")
    assert list(tmp_path.iterdir()) == []


def test_an_export_writes_an_audit_event(world, tmp_path) -> None:
    admin = AnalystFactory(username="boss")
    path = tmp_path / "a.csv"
    result = case_export(project=world["project"], fmt="csv", path=path, actor=admin)
    event = AuditEvent.objects.get(action=AUDIT_ACTION)
    assert (event.actor, event.project, event.object_id) == (
        admin,
        world["project"],
        str(world["project"].pk),
    )
    assert event.after["rows"] == 7 and event.after["sha256"] == result.sha256


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_round_trip_through_the_import_command(world, tmp_path, fmt) -> None:
    """Export, import into a new project with the import command: same cases, texts (formula
    characters included), metadata, and the final label as the given label."""
    project = world["project"]
    for index, text in enumerate(FORMULAS):
        _case(project, f"f{index}", text=text, metadata={"k": text, "n": index})
    _case(project, "-dash-id", text="@home decor", given_label=world["weapons"])
    path = tmp_path / f"export.{fmt}"
    call_command("export_cases", project.slug, "--format", fmt, "--out", str(path), verbosity=0)
    target = ProjectFactory(slug=f"copy-{fmt}", classes_fixed=False)
    call_command("import_cases", target.slug, str(path), verbosity=0)
    exported = {
        c.external_id: (c.text, c.metadata)
        for c in Case.objects.filter(project=project).exclude(external_id="c-excluded")
    }
    imported = {c.external_id: (c.text, c.metadata) for c in Case.objects.filter(project=target)}
    assert imported == exported
    final = {row["external_id"]: row["final_label"] for row in _final_labels(project, tmp_path)}
    labels = dict(
        Case.objects.filter(project=target).values_list("external_id", "given_label__name")
    )
    assert labels == final
    assert labels["c-adjudicated"] == "legit" and labels["c-annotation"] == "weapons"


def _final_labels(project, tmp_path):
    path = tmp_path / "check.jsonl"
    case_export(project=project, fmt="jsonl", path=path)
    return list(_jsonl(path).values())


def test_import_without_the_manifest_still_recognises_a_csv_export(world, tmp_path) -> None:
    """An uploaded export (no manifest beside it) is known by its header."""
    project = world["project"]
    _case(project, "f1", text="=cmd|' /C calc'!A0")
    path = _export(project, tmp_path, "csv").path
    path.with_name(path.name + ".manifest.json").unlink()
    _assert_reimported_as_exported(path)


def _assert_reimported_as_exported(path) -> None:
    """The export, imported into a new project, gives back the text exactly, no metadata."""
    target = ProjectFactory(classes_fixed=False)
    call_command(
        "import_cases",
        target.slug,
        str(path),
        "--id-column",
        "external_id",
        "--label-column",
        "final_label",
        verbosity=0,
    )
    case = Case.objects.get(project=target, external_id="f1")
    assert case.text == "=cmd|' /C calc'!A0" and case.metadata == {}


def test_an_export_of_the_first_version_is_still_recognised(world, tmp_path) -> None:
    """A CSV export made before the label-issue columns were appended (its header is the first
    version's columns) still loses its derived columns on import."""
    project = world["project"]
    _case(project, "f1", text="=cmd|' /C calc'!A0")
    path = _export(project, tmp_path, "csv").path
    path.with_name(path.name + ".manifest.json").unlink()
    with open(path, encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    keep = len(HEADER_PREFIX)
    assert tuple(rows[0][:keep]) == HEADER_PREFIX and len(rows[0]) > keep
    with open(path, "w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(row[:keep] for row in rows)
    _assert_reimported_as_exported(path)


def test_a_plain_csv_keeps_its_quotes(project, tmp_path) -> None:
    """Only an export loses a leading quote: someone else's CSV is imported as written."""
    path = tmp_path / "plain.csv"
    path.write_text("id,text\n1,'=not ours\n")
    call_command("import_cases", project.slug, str(path), verbosity=0)
    assert Case.objects.get(project=project).text == "'=not ours"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_labels_submitted_during_an_export_are_all_in_or_all_out(world, tmp_path, monkeypatch):
    """A label transaction that commits between two pages of the export changes nothing in it:
    the export reads one snapshot."""
    from labeling.services.exports import rows as rows_module

    monkeypatch.setattr(rows_module, "PAGE_SIZE", 2)
    project, weapons = world["project"], world["weapons"]
    case_ids = list(Case.objects.filter(project=project).values_list("pk", flat=True))
    done = threading.Event()

    def label_everything() -> None:
        try:
            with transaction.atomic():
                for pk in case_ids:
                    ResolvedLabel.objects.update_or_create(
                        case_id=pk,
                        defaults={"label": weapons, "source": ResolutionSource.ADJUDICATED},
                    )
        finally:
            connection.close()

    def progress(fraction: float, message: str) -> None:
        if fraction > 0 and not done.is_set():  # after the first page
            thread = threading.Thread(target=label_everything)
            thread.start()
            thread.join()
            done.set()

    path = tmp_path / "snap.jsonl"
    case_export(
        project=project,
        fmt="jsonl",
        path=path,
        options=ExportOptions(include_excluded=True),
        progress=progress,
    )
    assert done.is_set()
    assert ResolvedLabel.objects.filter(source=ResolutionSource.ADJUDICATED).count() == 8
    sources = [row["final_label_source"] for row in _jsonl(path).values()]
    assert len(sources) == 8
    assert "adjudicated" not in sources[:1]  # the first page was read before the labels
    assert sources.count("adjudicated") == 1  # c-adjudicated itself, from before: all out
