"""create_project: a whole project from YAML, or a clear error and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from labeling.models import LabelClass, Project
from labeling.services.projects import PROJECT_SETTINGS
from workbench.core.models import AuditEvent

pytestmark = pytest.mark.django_db

GOOD = """
name: Merchant risk
description: Decide whether merchants are supportable.
overlap: 2
overlap_fraction: 0.2
evaluation_fraction: 0.15
evaluation_overlap: 3
target_precision: 0.98
given_label_weight: 0.3
strategy: margin
batch_size: 25
retrain_after_n: 40
blind_mode: true
classes:
  - name: retail
    tier: supportable
    description: Ordinary retail shops.
    guideline: Physical goods with no restrictions.
    examples: ["A bakery selling bread."]
    shortcut_key: "1"
  - name: gambling
    display_name: Gambling
    tier: restricted
    description: Games of chance for money.
  - name: weapons
    tier: prohibited
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "classes.yaml"
    path.write_text(text)
    return path


def test_create_project_from_yaml(tmp_path: Path, capsys) -> None:
    call_command("create_project", "merchant-risk", "--classes", str(_write(tmp_path, GOOD)))
    project = Project.objects.get(slug="merchant-risk")
    assert project.name == "Merchant risk"
    assert (project.overlap, project.overlap_fraction, project.evaluation_fraction) == (
        2,
        0.2,
        0.15,
    )
    assert project.evaluation_overlap == 3
    assert (project.target_precision, project.given_label_weight) == (0.98, 0.3)
    assert (project.strategy, project.batch_size, project.retrain_after_n) == ("margin", 25, 40)
    assert project.blind_mode is True
    classes = list(project.label_classes.values_list("name", "tier", "shortcut_key"))
    # Missing keys are given the next free ones, digits first, never a reserved key.
    assert classes == [
        ("retail", "supportable", "1"),
        ("gambling", "restricted", "2"),
        ("weapons", "prohibited", "3"),
    ]
    assert LabelClass.objects.get(name="retail").examples == ["A bakery selling bread."]
    assert AuditEvent.objects.filter(action="project.create", object_id=str(project.pk)).exists()
    assert "Created project 'merchant-risk' with 3 classes." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("classes: []", "'classes' must be a non-empty list"),
        (
            "classes:\n  - {name: a, tier: banned}",
            "line 2: class #1 ('a'), field 'tier': 'banned' is not one of",
        ),
        (
            "classes:\n  - {name: a, shortcut_key: n}",
            "line 2: class #1 ('a'), field 'shortcut_key': 'n' is reserved by the queue",
        ),
        (
            "classes:\n  - {name: a, shortcut_key: '1'}\n  - {name: b, shortcut_key: '1'}",
            "line 3: class #2 ('b'), field 'shortcut_key': '1' is used by another class",
        ),
        (
            "classes:\n  - {name: a}\n  - {name: a}",
            "line 3: class #2 ('a'), field 'name': duplicate class name",
        ),
        ("classes:\n  - {tier: restricted}", "line 2: class #1 (''), field 'name': is required"),
        ("name: x\n\ncolour: red\nclasses:\n  - {name: a}", "line 3: unknown setting 'colour'"),
        (
            "classes:\n  - {name: a}\nevaluation_fraction: 3",
            "line 3: setting 'evaluation_fraction': Ensure this value is less than or equal to 1.0",
        ),
        ("overlap: two\nclasses:\n  - {name: a}", "line 1: setting 'overlap': "),
        (
            "classes:\n  - name: a\n  - name: b\n    tier: prohibited\n    display_name: "
            + "B" * 201,
            "line 5: class #2 ('b'), field 'display_name': Ensure this value has at most 200",
        ),
        (
            "classes:\n  - name: a\n    guideline: [do, this]",
            "line 3: class #1 ('a'), field 'guideline': must be a text",
        ),
        ("classes:\n  - {name: a, colour: red}", "line 2: class #1 ('a'), field 'colour': unknown"),
        (
            "classes:\n  - name:\n    tier: restricted",
            "line 2: class #1 (''), field 'name': is required",
        ),
        ("classes:\n  - just a name", "line 2: class #1 (''), field '-': each class must be"),
        ("classes: [unclosed", "not valid YAML"),
    ],
)
def test_bad_file_names_the_problem_and_writes_nothing(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(CommandError) as exc:
        call_command("create_project", "p", "--classes", str(path))
    assert message in str(exc.value)
    assert str(path) in str(exc.value)
    assert not Project.objects.exists() and not LabelClass.objects.exists()


def test_the_documented_example_file_creates_its_project() -> None:
    """docs/classes.example.yaml, as docs/classes.md shows it, loads with the values it says."""
    example = Path(__file__).resolve().parents[3] / "docs" / "classes.example.yaml"
    call_command("create_project", "example", "--classes", str(example))
    project = Project.objects.get(slug="example")
    assert project.name == "Merchant risk" and project.strategy == "diversity"
    classes = list(project.label_classes.values_list("name", "tier", "shortcut_key"))
    assert classes == [
        ("retail", "supportable", "1"),
        ("gambling", "restricted", "2"),
        ("weapons", "prohibited", "3"),
    ]
    retail = project.label_classes.get(name="retail")
    assert len(retail.examples) == 2 and retail.guideline.count("\n") == 2
    documented = (example.parent / "classes.md").read_text()
    for setting in PROJECT_SETTINGS:  # every setting has a row in the document
        assert f"| `{setting}` |" in documented, setting


def test_existing_slug_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    call_command("create_project", "dup", "--classes", str(path))
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_project", "dup", "--classes", str(path))
