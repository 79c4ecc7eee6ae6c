"""The label quality selector: the latest run only, prior-weighted confusions, worst pairs first,
Krippendorff's reading, and a fixed number of queries whatever the number of analysts."""

from __future__ import annotations

import pytest

from labeling.selectors_quality import (
    ALPHA_RELIABLE,
    CLASS_PAIRS_SHOWN,
    READING_LOW,
    READING_NONE,
    READING_RELIABLE,
    READING_TENTATIVE,
    Figure,
    alpha_reading,
    percent,
    quality_report,
)
from tests.factories import LabelClassFactory
from tests.labeling.quality_runs import (
    MATRIX_A_TO_B,
    analysts,
    consensus_cases,
    earlier,
    store_run,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def classes(project):
    return [LabelClassFactory(project=project, name=n) for n in ("a", "b", "c")]


def test_no_run_is_no_report(project) -> None:
    """Before the first consensus step there is nothing to report."""
    assert quality_report(project=project) is None


def test_worst_confusion_is_weighted_by_how_common_the_true_class_is(project, classes) -> None:
    """Class a is 90% of the cases, c none: saying b for a (10%) outweighs b -> a (30%) and
    c -> b (50%)."""
    a, b, _c = classes
    consensus_cases(project, [(a, 90), (b, 10)])
    (user,) = analysts(1)
    store_run(project, classes, analysts=[(user, 0.88, MATRIX_A_TO_B, 100, 0, 0)])
    worst = quality_report(project=project).analysts[0].worst
    assert (worst.truth, worst.said) == ("a", "b")
    assert worst.rate == pytest.approx(0.1) and worst.mass == pytest.approx(0.09)


def test_a_confusion_resting_on_less_than_one_label_is_not_shown(project, classes) -> None:
    """b is 1% of the cases: its row's 100% b -> a rests on half of 50 labels' worth."""
    a, b, _ = classes
    consensus_cases(project, [(a, 99), (b, 1)])
    matrix = [[0.98, 0.02, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    few, many = analysts(2)
    store_run(
        project,
        classes,
        analysts=[(few, 0.98, matrix, 50, 0, 0), (many, 0.98, matrix, 500, 0, 0)],
    )
    rows = {r.person.user_id: r for r in quality_report(project=project).analysts}
    assert rows[few.pk].worst is None
    worst = rows[many.pk].worst
    assert (worst.truth, worst.said, worst.labels_text) == ("a", "b", "10")


def test_without_consensus_cases_priors_are_uniform(project, classes) -> None:
    (user,) = analysts(1)
    store_run(project, classes, analysts=[(user, 0.7, MATRIX_A_TO_B, 100, 0, 0)])
    worst = quality_report(project=project).analysts[0].worst
    assert (worst.truth, worst.said, worst.rate) == ("c", "b", 0.5)


def test_sources_show_their_three_most_frequent_confusions(project, classes) -> None:
    a, b, c = classes
    consensus_cases(project, [(a, 50), (b, 30), (c, 20)])
    matrix = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]]
    store_run(project, classes, analysts=[], sources=[("rule_x", 0.73, matrix, 400)])
    (source,) = quality_report(project=project).sources
    # masses: a->b .10, a->c .05, c->b .06, b->a .03, b->c .03
    assert [(x.truth, x.said) for x in source.confusions] == [("a", "b"), ("c", "b"), ("a", "c")]
    assert [x.rate_text for x in source.confusions] == ["20%", "30%", "10%"]


def test_only_the_latest_run_is_read(project, classes) -> None:
    old_user, new_user = analysts(2)
    store_run(
        project,
        classes,
        analysts=[(old_user, 0.5, MATRIX_A_TO_B, 10, 0, 0)],
        alpha=(0.1, 0.0, 0.2, 10),
        measured_at=earlier(),
    )
    run = store_run(project, classes, analysts=[(new_user, 0.9, MATRIX_A_TO_B, 20, 0, 0)])
    report = quality_report(project=project)
    assert [r.person.user_id for r in report.analysts] == [new_user.pk]
    assert report.alpha.value == 0.42 and report.job == run.job
    assert report.measured_at == run.measured_at


def test_an_agreement_older_than_the_reliabilities_is_not_shown(project, classes) -> None:
    (user,) = analysts(1)
    store_run(project, classes, analysts=[], measured_at=earlier())
    store_run(project, classes, analysts=[(user, 0.9, MATRIX_A_TO_B, 20, 0, 0)], alpha=None)
    report = quality_report(project=project)
    assert report.alpha is None and report.reading == READING_NONE


def test_pairs_worst_first_and_capped(project, classes) -> None:
    a, b, _c = classes
    pairs = [
        {"a": a.pk, "b": b.pk, "value": v / 100, "low": None, "high": None, "n": 6}
        for v in range(20, 8, -1)
    ]
    pairs.append({"a": b.pk, "b": 99999, "value": None, "low": None, "high": None, "n": 7})
    users = analysts(3)
    analyst_pairs = [
        {"a": users[0].pk, "b": users[1].pk, "value": 0.8, "low": 0.7, "high": 0.9, "n": 40},
        {"a": users[1].pk, "b": users[2].pk, "value": 0.3, "low": 0.1, "high": 0.5, "n": 25},
    ]
    store_run(project, classes, analysts=[], class_pairs=pairs, analyst_pairs=analyst_pairs)
    report = quality_report(project=project)
    assert len(report.class_pairs) == CLASS_PAIRS_SHOWN and report.class_pairs_total == 13
    assert [p.figure.value for p in report.class_pairs[:2]] == [0.09, 0.10]
    assert [(p.a.user_id, p.b.user_id) for p in report.analyst_pairs] == [
        (users[1].pk, users[2].pk),
        (users[0].pk, users[1].pk),
    ]


def test_case_counts(project, classes) -> None:
    a, b, _ = classes
    project.consensus_threshold = 0.6
    project.save()
    consensus_cases(project, [(a, 8), (b, 4)], disagree=5, below=3)
    store_run(project, classes, analysts=[])
    counts = quality_report(project=project).cases
    assert (counts.total, counts.disagree, counts.below, counts.below_multi, counts.multi) == (
        12,
        5,
        3,
        3,
        3,
    )
    assert counts.threshold == 0.6


@pytest.mark.parametrize(
    ("figure", "starts"),
    [
        (None, READING_NONE),
        (Figure(None, None, None, 3), READING_NONE),
        (Figure(0.9, 0.85, 0.95, 500), READING_RELIABLE),
        (Figure(0.7, 0.68, 0.72, 500), READING_TENTATIVE),
        (Figure(0.42, 0.39, 0.44, 1415), READING_LOW),
    ],
)
def test_alpha_reading_follows_krippendorff(figure, starts) -> None:
    assert alpha_reading(figure) == starts


def test_an_interval_across_a_threshold_is_said() -> None:
    reading = alpha_reading(Figure(0.78, 0.7, 0.83, 300))
    assert reading.startswith(READING_TENTATIVE) and f"across {ALPHA_RELIABLE}" in reading


def test_percent() -> None:
    assert [percent(x) for x in (0.123, 0.0183, 0.0, 1.0, 0.0996)] == [
        "12%",
        "1.8%",
        "0%",
        "100%",
        "10%",
    ]


@pytest.mark.parametrize("n_analysts", [2, 25])
def test_a_fixed_number_of_queries(
    project, classes, n_analysts, django_assert_max_num_queries
) -> None:
    """Five queries whether 2 or 25 analysts, with every pair of them and every source."""
    a, b, c = classes
    consensus_cases(project, [(a, 3), (b, 2)])
    users = analysts(n_analysts)
    pairs = [
        {"a": x.pk, "b": y.pk, "value": 0.5, "low": 0.4, "high": 0.6, "n": 30}
        for i, x in enumerate(users)
        for y in users[i + 1 :]
    ]
    store_run(
        project,
        classes,
        analysts=[(u, 0.8, MATRIX_A_TO_B, 50, 4, 3) for u in users],
        sources=[(f"rule_{i}", 0.7, MATRIX_A_TO_B, 80) for i in range(n_analysts)],
        class_pairs=[{"a": a.pk, "b": c.pk, "value": 0.2, "low": 0.1, "high": 0.3, "n": 9}],
        analyst_pairs=pairs,
    )
    project.refresh_from_db()
    with django_assert_max_num_queries(5):
        report = quality_report(project=project)
        assert len(report.analysts) == n_analysts and len(report.sources) == n_analysts
        assert all(p.a.username.startswith("analyst") for p in report.analyst_pairs)
