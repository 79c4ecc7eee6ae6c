"""Synthetic demo data: the noisy label is given, the truth kept apart, the same seed the same data."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from labeling.models import Case, LabelClass, SyntheticTruth
from labeling.services.demo import demo_project_ensure, demo_users_ensure
from labeling.services.demo_data import (
    DEMO_LABEL_SOURCES,
    ERR_TAXONOMY,
    demo_data_generate,
    demo_label_source,
)
from labeling.synthetic import category_names, generate
from tests.factories import LabelClassFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def cases_of(project) -> list[tuple]:
    return list(
        Case.objects.filter(project=project)
        .order_by("external_id")
        .values_list(
            "external_id",
            "text",
            "metadata",
            "given_label__name",
            "synthetic_truth__true_label__name",
            "synthetic_truth__noise_kind",
        )
    )


def test_make_demo_data_writes_noisy_labels_and_the_truth_apart() -> None:
    """Given labels carry exactly the injected noise; the true label is a SyntheticTruth."""
    project = ProjectFactory()
    call_command(
        "make_demo_data",
        project.slug,
        "--cases",
        "200",
        "--noise",
        "0.2",
        "--seed",
        "3",
        verbosity=0,
    )
    names = list(LabelClass.objects.filter(project=project).values_list("name", flat=True))
    assert sorted(names) == sorted(category_names())
    rows = cases_of(project)
    records = generate(200, seed=3, noise=0.2)
    assert len(rows) == 200 and SyntheticTruth.objects.count() == 200
    assert sum(r[3] != r[4] for r in rows) == 40
    first, record = rows[0], records[0]
    assert first[:2] == (record.external_id, record.description)
    assert first[2] == record.metadata() and first[2]["mcc"] == record.mcc
    assert (first[3], first[4], first[5]) == (
        record.given_label,
        record.true_label,
        record.noise_kind,
    )


def test_same_seed_same_data() -> None:
    a, b, c = ProjectFactory(), ProjectFactory(), ProjectFactory()
    demo_data_generate(project=a, cases=50, noise=0.3, seed=9)
    demo_data_generate(project=b, cases=50, noise=0.3, seed=9)
    demo_data_generate(project=c, cases=50, noise=0.3, seed=10)
    assert cases_of(a) == cases_of(b) != cases_of(c)


def test_demo_cases_get_a_few_label_sources_drawn_from_their_ids() -> None:
    """Every source shows up; the same id always gets the same one, whatever the seed; the given
    labels are the generator's."""
    project, other = ProjectFactory(), ProjectFactory()
    demo_data_generate(project=project, cases=60, noise=0.2, seed=4)
    demo_data_generate(project=other, cases=60, noise=0.5, seed=5)
    rows = list(project.cases.values_list("external_id", "given_label_source"))
    assert {source for _, source in rows} == set(DEMO_LABEL_SOURCES)
    assert all(source == demo_label_source(external_id) for external_id, source in rows)
    assert rows == list(other.cases.values_list("external_id", "given_label_source"))
    given = dict(project.cases.values_list("external_id", "given_label__name"))
    assert given == {r.external_id: r.given_label for r in generate(60, seed=4, noise=0.2)}


def test_classes_must_match_the_taxonomy_and_reruns_write_nothing() -> None:
    project = ProjectFactory()
    LabelClassFactory(project=project, name="general_retail", shortcut_key="1")
    with pytest.raises(CommandError) as exc:
        call_command("make_demo_data", project.slug, "--cases", "5", verbosity=0)
    assert str(exc.value).startswith(ERR_TAXONOMY.split("{")[0])
    other = ProjectFactory()
    demo_data_generate(project=other, cases=5)
    report = demo_data_generate(project=other, cases=5)
    assert not report.ok and report.error_count == 5
    assert Case.objects.filter(project=other).count() == 5


def test_demo_loads_5000_cases_once(tmp_path) -> None:
    """`make demo` fills the demo project with 5,000 cases, then leaves them alone (its time
    budget is measured by bench/budgets.py)."""
    demo_users_ensure(credentials_path=tmp_path / "creds.json")
    project = demo_project_ensure()
    assert project.cases.count() == 5000 and SyntheticTruth.objects.count() == 5000
    assert project.cases.filter(split="eval").count() in range(350, 651)
    before = set(project.cases.values_list("pk", flat=True))
    demo_project_ensure()
    assert set(project.cases.values_list("pk", flat=True)) == before
