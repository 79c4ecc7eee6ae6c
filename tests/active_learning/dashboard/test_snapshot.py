"""The dashboard reads its expensive figures from the stored snapshot: a render never counts
over the project's cases or computes the champion's evaluation, its query count does not grow
with the cases, and a missing, stale or other-champion snapshot is shown as such and asked of a
worker (once)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from active_learning import tasks
from active_learning.dashboard import data_panel, model_panel
from active_learning.models import DashboardSnapshot, LabelIssue, ModelStatus, ModelVersion
from active_learning.services import dashboard
from labeling.models import Case, ProjectRole, ResolvedLabel
from tests.active_learning.dashboard import builders
from tests.factories import AnalystFactory

pytestmark = pytest.mark.django_db
MAX_QUERIES = 30  # a full render with a stored snapshot, whatever the number of cases


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.WORKBENCH_DATA_DIR = tmp_path


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """Projects whose snapshot task was sent (the broker is not used)."""
    calls: list[int] = []
    monkeypatch.setattr(tasks.dashboard_snapshot_refresh, "delay", calls.append)
    return calls


@pytest.fixture
def never_inline(monkeypatch) -> Callable[[], None]:
    """Call it once the data is built: from then on, computing the snapshot's figures (in a
    request) fails the test."""

    def boom(**_: object) -> None:
        raise AssertionError("the page computed a snapshot figure inline")

    def forbid() -> None:
        monkeypatch.setattr(data_panel, "counts_compute", boom)
        monkeypatch.setattr(model_panel, "champion_evaluation_compute", boom)
        monkeypatch.setattr(dashboard, "counts_compute", boom)
        monkeypatch.setattr(dashboard, "dashboard_snapshot_refresh", boom)

    return forbid


def _reviewer(client, project) -> None:
    user = AnalystFactory()
    project.memberships.create(user=user, role=ProjectRole.REVIEWER)
    client.force_login(user)


def _get(client, project):
    response = client.get(reverse("active_learning:dashboard", args=[project.slug]))
    assert response.status_code == 200
    return response, response.content.decode()


def _more_cases(project, classes, n: int) -> None:
    cases = Case.objects.bulk_create(
        Case(project=project, external_id=f"X{i:05d}", text=f"more {i}", content_hash=f"x{i}",
             given_label=classes[i % len(classes)])
        for i in range(n)
    )  # fmt: skip
    LabelIssue.objects.bulk_create(
        LabelIssue(project=project, case=c, given_label=c.given_label, suggested_label=classes[0],
                   score=0.5, self_confidence=0.5, in_prune_set=i % 2 == 0)
        for i, c in enumerate(cases)
    )  # fmt: skip
    ResolvedLabel.objects.bulk_create(
        ResolvedLabel(case=c, label=c.given_label, source="review") for c in cases[: n // 3]
    )


def test_render_with_a_snapshot_never_counts_and_its_queries_do_not_grow(
    client, never_inline, sent
) -> None:
    """With a fresh snapshot a render computes nothing and sends nothing; ten times the cases
    cost the same number of queries, and the page still shows the stored counts."""
    project, classes = builders.project_with_classes()
    builders.history(project, classes, versions=5)
    _reviewer(client, project)
    never_inline()
    stored = DashboardSnapshot.objects.get(project=project)
    with CaptureQueriesContext(connection) as small:
        response, html = _get(client, project)
    assert response.context["data"].cases == stored.counts["cases"]
    assert response.context["evaluation"] == stored.evaluation
    assert f'Counted at <time datetime="{timezone.localtime(stored.counted_at):%Y-%m-%dT%H}' in html
    _more_cases(project, classes, 10 * Case.objects.filter(project=project).count())
    with CaptureQueriesContext(connection) as large:
        response, _ = _get(client, project)
    assert len(large) == len(small) <= MAX_QUERIES
    assert response.context["data"].cases == stored.counts["cases"]  # the snapshot, not a count
    assert sent == []
    sql = " ".join(q["sql"] for q in large.captured_queries)
    assert "GROUP BY" not in sql.upper().replace('"ACTIVE_LEARNING_LABELNOISEESTIMATE"', "")


def test_render_stays_within_the_query_budget(client, django_assert_max_num_queries) -> None:
    project, classes = builders.project_with_classes()
    builders.history(project, classes, versions=7)
    _reviewer(client, project)
    with django_assert_max_num_queries(MAX_QUERIES):
        _get(client, project)


def test_without_a_snapshot_the_page_says_so_and_asks_a_worker_once(
    client, never_inline, sent, django_capture_on_commit_callbacks
) -> None:
    project, classes = builders.project_with_classes()
    builders.history(project, classes, versions=3, snapshot=False)
    _reviewer(client, project)
    never_inline()
    with django_capture_on_commit_callbacks(execute=True):
        response, html = _get(client, project)
    assert "Not counted yet: a worker is counting these figures now" in html
    assert "Being computed in the background for this champion" in html
    assert response.context["evaluation_pending"] is True
    assert sent == [project.pk]
    snapshot = DashboardSnapshot.objects.get(project=project)
    assert snapshot.counted_at is None and snapshot.requested_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        _get(client, project)
    assert sent == [project.pk]  # asked once per REQUEST_RESEND_SECONDS, not per render


def test_a_stale_snapshot_is_shown_while_a_new_one_is_asked_for(
    client, never_inline, sent, django_capture_on_commit_callbacks
) -> None:
    project, classes = builders.project_with_classes()
    builders.history(project, classes, versions=3)
    old = timezone.now() - timedelta(seconds=dashboard.REFRESH_SECONDS + 60)
    DashboardSnapshot.objects.filter(project=project).update(counted_at=old)
    _reviewer(client, project)
    never_inline()
    with django_capture_on_commit_callbacks(execute=True):
        response, html = _get(client, project)
    assert f"{timezone.localtime(old):%H:%M}</time> over" in html
    assert response.context["evaluation"]["n"] == 90
    assert sent == [project.pk]


def test_a_snapshot_of_another_champion_is_not_shown_as_this_ones(
    client, never_inline, sent, django_capture_on_commit_callbacks
) -> None:
    """After a rollback the stored reliability and confusions are the old champion's: the page
    says they are being computed instead of showing them under the new name."""
    project, classes = builders.project_with_classes()
    made = builders.history(project, classes, versions=3)
    ModelVersion.objects.filter(project=project, status=ModelStatus.CHAMPION).update(
        status=ModelStatus.RETIRED
    )
    ModelVersion.objects.filter(pk=made[0].pk).update(status=ModelStatus.CHAMPION)
    _reviewer(client, project)
    never_inline()
    with django_capture_on_commit_callbacks(execute=True):
        response, html = _get(client, project)
    assert response.context["evaluation"] == {}
    assert "Being computed in the background for this champion" in html
    assert sent == [project.pk]
