"""The dashboard snapshot's background step: stores the data quality counts and the champion's
reliability and confusions exactly as computed independently here, runs as the retrain chain's
last step and as a task, is idempotent, and the minute tick resends unanswered requests."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from active_learning import tasks
from active_learning.models import (
    DashboardSnapshot,
    LabelIssue,
    ModelStatus,
    ModelVersion,
    Prediction,
)
from active_learning.services import dashboard
from active_learning.services.retrain import PIPELINE
from labeling.models import Case, ResolvedLabel, Split
from tests.active_learning.dashboard import builders
from tests.factories import CaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.WORKBENCH_DATA_DIR = tmp_path


def _data(project, classes) -> None:
    guns = classes[2]
    for i in range(12):
        case = CaseFactory(project=project, given_label=classes[i % 3], external_id=f"G{i}")
        LabelIssue.objects.create(
            project=project, case=case, given_label=case.given_label, suggested_label=guns,
            score=0.9, self_confidence=0.1, in_prune_set=i % 4 != 3,
        )  # fmt: skip
        if i % 3 == 0:
            ResolvedLabel.objects.create(case=case, label=guns, source="review")
        elif i == 4:
            ResolvedLabel.objects.create(case=case, label=None, source="adjudicated", excluded=True)
        elif i == 5:
            ResolvedLabel.objects.create(case=case, label=case.given_label, source="review")
    CaseFactory(project=project)  # no given label


def _expected_counts(project) -> dict:
    """The same figures, by walking the rows in Python."""
    cases = list(Case.objects.filter(project=project))
    issues = {i.case_id: i for i in LabelIssue.objects.filter(project=project)}
    resolved = {r.case_id: r for r in ResolvedLabel.objects.filter(case__project=project)}
    given = Counter(str(c.given_label_id) for c in cases if c.given_label_id)
    flagged = Counter(str(i.given_label_id) for i in issues.values() if i.in_prune_set)
    reviewed = real = settled_flagged = 0
    for case in cases:
        r, issue = resolved.get(case.pk), issues.get(case.pk)
        decided = r is not None and r.source in ("review", "adjudicated")
        if r is not None and (decided or r.excluded) and issue is not None and issue.in_prune_set:
            settled_flagged += 1
        if decided and issue is not None:
            reviewed += 1
            real += r.excluded or r.label_id != case.given_label_id
    return {
        "given": dict(given),
        "flagged": dict(flagged),
        "by_source": dict(Counter(r.source for r in resolved.values())),
        "issues": {
            "open": sum(flagged.values()) - settled_flagged,
            "reviewed": reviewed,
            "real": real,
        },
        "excluded": sum(1 for r in resolved.values() if r.excluded),
        "cases": len(cases),
    }


def test_refresh_stores_what_an_independent_count_gives(project) -> None:
    project, classes = builders.project_with_classes()
    made = builders.history(project, classes, versions=3, snapshot=False)
    _data(project, classes)
    result = dashboard.dashboard_snapshot_refresh(project=project)
    assert result["stored"] is True
    snapshot = DashboardSnapshot.objects.get(project=project)
    expected = _expected_counts(project)
    assert snapshot.counts == expected
    assert expected["issues"] == {"open": 4, "reviewed": 6, "real": 5}  # the data, spelled out
    champion = next(v for v in made if v.number == 3)
    assert snapshot.champion_id == champion.pk
    # The champion's evaluation: every labelled evaluation case, its confusions as counted here.
    truth = dict(
        ResolvedLabel.objects.filter(case__project=project, case__split=Split.EVAL).values_list(
            "case_id", "label_id"
        )
    )
    predicted = dict(
        Prediction.objects.filter(model_version=champion, case_id__in=truth).values_list(
            "case_id", "predicted_label_id"
        )
    )
    evaluation = snapshot.evaluation
    assert evaluation["n"] == len(truth) == 90
    assert sum(b["count"] for b in evaluation["bins"]) == 90
    right = sum(truth[c] == predicted[c] for c in truth)
    assert sum(b["count"] * b["accuracy"] for b in evaluation["bins"]) == pytest.approx(right)
    names = {c.pk: c.name for c in classes}
    mistakes = Counter(
        (names[truth[c]], names[predicted[c]]) for c in truth if truth[c] != predicted[c]
    )
    assert {(r["truth"], r["predicted"]): r["cases"] for r in evaluation["confusions"]} == dict(
        mistakes
    )


def test_refresh_stores_each_analysts_window_of_this_project(project) -> None:
    """The people panel's window: this project's current answers of the last 30 days only."""
    from tests.factories import AnalystFactory

    project, classes = builders.project_with_classes()
    other, _ = builders.project_with_classes()
    ana, bo = AnalystFactory(), AnalystFactory()
    case, elsewhere = CaseFactory(project=project), CaseFactory(project=other)
    builders.answer(case, ana, duration_ms=4000)
    builders.answer(case, ana, duration_ms=6000, label=classes[0])
    old = builders.answer(case, ana, duration_ms=1000)
    old.created_at = timezone.now() - timedelta(days=40)
    old.save(update_fields=["created_at"])
    builders.answer(case, bo, skipped=True, duration_ms=9000)
    builders.answer(elsewhere, bo, duration_ms=2000)
    dashboard.dashboard_snapshot_refresh(project=project)
    people = DashboardSnapshot.objects.get(project=project).people
    assert people["totals"] == {str(ana.pk): [2, 0], str(bo.pk): [0, 1]}
    assert people["median_seconds"] == {str(ana.pk): 5.0, str(bo.pk): 9.0}
    assert people["per_day"][str(ana.pk)][-1] == 2 and sum(people["per_day"][str(bo.pk)]) == 0
    assert people["days"][-1] == timezone.localdate().isoformat() and len(people["days"]) == 14


def test_refresh_is_idempotent_and_an_older_run_never_overwrites_a_newer(project) -> None:
    project, classes = builders.project_with_classes()
    builders.history(project, classes, versions=1)
    assert dashboard.dashboard_snapshot_refresh(project=project) == {"skipped": "not due"}
    future = timezone.now() + timedelta(minutes=1)
    DashboardSnapshot.objects.filter(project=project).update(counted_at=future)
    assert dashboard.dashboard_snapshot_refresh(project=project, force=True)["stored"] is False
    assert DashboardSnapshot.objects.get(project=project).counted_at == future


def test_the_task_stores_the_snapshot(project) -> None:
    project, classes = builders.project_with_classes()
    builders.history(project, classes, versions=1, snapshot=False)
    tasks.dashboard_snapshot_refresh.run(project.pk)
    assert (
        DashboardSnapshot.objects.get(project=project).counts["cases"]
        == Case.objects.filter(project=project).count()
    )
    assert tasks.dashboard_snapshot_refresh.run(10**9) == {"skipped": "no such project"}


def test_the_retrain_chain_ends_with_the_snapshot() -> None:
    assert PIPELINE[-1].name == "dashboard"
    assert sum(step.share for step in PIPELINE) == pytest.approx(1.0)


def test_the_minute_tick_resends_unanswered_requests(
    project, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from workbench.tick import minute_tick

    sent: list[int] = []
    monkeypatch.setattr(tasks.dashboard_snapshot_refresh, "delay", sent.append)
    project, _ = builders.project_with_classes()
    answered, _ = builders.project_with_classes()
    long_ago = timezone.now() - timedelta(seconds=dashboard.REQUEST_RESEND_SECONDS + 30)
    DashboardSnapshot.objects.create(project=project, requested_at=long_ago)
    DashboardSnapshot.objects.create(
        project=answered, requested_at=long_ago, counted_at=timezone.now(), counts={}
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = minute_tick()
    assert result["dashboard_snapshots_resent"] == [project.pk] and sent == [project.pk]
    assert DashboardSnapshot.objects.get(project=project).requested_at > long_ago
    with django_capture_on_commit_callbacks(execute=True):
        assert minute_tick()["dashboard_snapshots_resent"] == []


def test_a_champion_change_makes_the_snapshot_due(project) -> None:
    project, classes = builders.project_with_classes()
    made = builders.history(project, classes, versions=3)
    snapshot = DashboardSnapshot.objects.get(project=project)
    champion = ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION)
    assert not dashboard.snapshot_due(snapshot=snapshot, champion_pk=champion.pk)
    assert dashboard.snapshot_due(snapshot=snapshot, champion_pk=made[0].pk)
    assert dashboard.snapshot_due(snapshot=None, champion_pk=None)
