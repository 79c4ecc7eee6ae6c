"""The project dashboard: every panel renders with no model, one model and many versions; plots
are PNGs drawn from exactly the data in their tables; analysts see their own figures only."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
from django.urls import reverse

from active_learning.dashboard import cache, model_panel, plots
from active_learning.models import ModelStatus
from labeling.models import ProjectRole
from tests.active_learning.dashboard import builders
from tests.factories import AnalystFactory, CaseFactory, ProjectFactory

pytestmark = pytest.mark.django_db
PANELS = ("model-panel", "plots-panel", "stopping-panel", "operating-points-panel", "data-panel")


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.WORKBENCH_DATA_DIR = tmp_path
    from django.core.cache import cache as django_cache

    django_cache.clear()


def _member(client, project, role):
    user = AnalystFactory()
    project.memberships.create(user=user, role=role)
    client.force_login(user)
    return user


def _page(client, project):
    response = client.get(reverse("active_learning:dashboard", args=[project.slug]))
    assert response.status_code == 200
    return response, response.content.decode()


def _rows(html: str, table_id: str) -> list[str]:
    body = re.search(rf'id="{table_id}".*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, table_id
    return re.findall(r"<tr[ >].*?</tr>", body.group(1), re.S)


def _plot_urls(html: str) -> dict[str, str]:
    found = re.findall(r'<img src="([^"]*/dashboard/plots/([a-z-]+)\.png\?v=[0-9a-f]+)"', html)
    return {name: url.replace("&amp;", "&") for url, name in found}


def test_dashboard_with_no_model(client) -> None:
    """Every panel renders and says what is missing; every plot is a PNG saying so too."""
    project, _ = builders.project_with_classes()
    _member(client, project, ProjectRole.REVIEWER)
    _, html = _page(client, project)
    for panel in (*PANELS, "people-panel"):
        assert f'id="{panel}"' in html, panel
    assert "No model yet" in html
    assert "No version measured on evaluation labels yet." in html
    assert "Not enough champions yet" in html
    assert "No champion with operating points yet." in html
    urls = _plot_urls(html)
    assert set(urls) == set(plots.DRAW)
    for url in urls.values():
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert response.content.startswith(b"\x89PNG")


def test_dashboard_with_one_model(client) -> None:
    project, classes = builders.project_with_classes()
    builders.history(project, classes, versions=1)
    _member(client, project, ProjectRole.REVIEWER)
    response, html = _page(client, project)
    assert "Champion: v1" in html and "None yet: the champion is the only version." in html
    assert "v1 was promoted: promoted: there is no champion yet" in html
    assert len(_rows(html, "version-history")) == 1
    assert len(_rows(html, "learning-curve-data")) == 1
    evaluation = response.context["evaluation"]
    assert evaluation["n"] == 90 and evaluation["bins"] and evaluation["ece"] is not None
    assert len(_rows(html, "reliability-data")) == len(evaluation["bins"])
    assert len(_rows(html, "class-points-data")) == 3
    assert len(_rows(html, "operating-points-table")) == 6  # 3 tiers + 3 classes
    assert "Not enough champions yet" in html


def test_dashboard_with_many_versions(client) -> None:
    project, classes = builders.project_with_classes()
    made = builders.history(project, classes, versions=7)
    _member(client, project, ProjectRole.ADMIN)
    response, html = _page(client, project)
    champion = next(v for v in made if v.number == 7)
    champion.refresh_from_db()
    assert champion.status == ModelStatus.CHAMPION
    assert "Champion: v7" in html and "Previous version: v6" in html
    assert len(_rows(html, "version-history")) == 7
    assert len(_rows(html, "learning-curve-data")) == 7
    # Champions v1, v3, v5, v7: three consecutive changes; the flip happened before v3 only.
    changes = response.context["stopping"].changes
    assert [(a, b) for a, b, _ in changes] == [(1, 3), (3, 5), (5, 7)]
    assert changes[-1][2] == 0.0
    assert len(_rows(html, "stopping-data")) == 3


def test_plots_match_their_tables(client, monkeypatch) -> None:
    """Each PNG is drawn from the data its table shows, and its URL names that data's hash."""
    project, classes = builders.project_with_classes()
    builders.history(project, classes, versions=3)
    _member(client, project, ProjectRole.REVIEWER)
    response, html = _page(client, project)
    drawn = {}
    for name, draw in plots.DRAW.items():

        def spy(data, _name=name, _draw=draw):
            drawn[_name] = data
            return _draw(data)

        monkeypatch.setitem(plots.DRAW, name, spy)
    for name, url in _plot_urls(html).items():
        png = client.get(url)
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG"), name
        assert "immutable" in png["Cache-Control"], name  # the URL's hash is the data's hash
        assert url.endswith(cache.fingerprint(drawn[name])), name
    model = response.context["model"]
    assert drawn["learning-curve"] == model.learning_curve
    for point, row in zip(model.learning_curve, _rows(html, "learning-curve-data"), strict=True):
        assert f"v{point['number']}<" in row and f"{point['macro_f1']:.3f}" in row
    evaluation = response.context["evaluation"]
    assert drawn["reliability"]["bins"] == evaluation["bins"]
    for b, row in zip(evaluation["bins"], _rows(html, "reliability-data"), strict=True):
        assert f"{b['accuracy']:.3f}" in row and f">{b['count']}<" in row
    assert drawn["class-points"] == model.class_points
    for p, row in zip(model.class_points, _rows(html, "class-points-data"), strict=True):
        assert p["name"] in row and ("proven" in row) == p["enough"]
    assert drawn["confusions"]["confusions"] == evaluation["confusions"]
    assert len(_rows(html, "confusions-data")) == len(evaluation["confusions"])
    # Drawn once: a second request reads the file.
    drawn.clear()
    client.get(_plot_urls(html)["reliability"])
    assert drawn == {}


def test_operating_points_csv(client) -> None:
    project, classes = builders.project_with_classes()
    builders.history(project, classes, versions=1)
    _member(client, project, ProjectRole.REVIEWER)
    response = client.get(reverse("active_learning:operating_points_csv", args=[project.slug]))
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["kind"] for r in rows] == ["tier"] * 3 + ["class"] * 3
    assert [r["name"] for r in rows[:3]] == ["supportable", "restricted", "prohibited"]
    assert {r["name"] for r in rows[3:]} == {"Retail", "Crypto exchange", "Firearms"}
    assert all(r["target_precision"] == "0.9" for r in rows)
    assert all(r["enough_evidence"] in ("yes", "no") for r in rows)


def test_analysts_see_only_their_own_figures(client) -> None:
    """An analyst's page has their own people row and nothing else; plots and CSV are 403."""
    project, classes = builders.project_with_classes()
    builders.history(project, classes, versions=2)
    other = AnalystFactory(username="someone-else")
    project.memberships.create(user=other, role=ProjectRole.ANALYST)
    case = CaseFactory(project=project)
    for _ in range(3):
        builders.answer(case, other, duration_ms=9000)
    me = _member(client, project, ProjectRole.ANALYST)
    builders.answer(case, me, duration_ms=5000)
    builders.answer(case, me, skipped=True, duration_ms=7000)
    response, html = _page(client, project)
    assert "someone-else" not in html
    assert me.username in html
    rows = _rows(html, "people-table")
    assert len(rows) == 1 and f'data-user="{me.pk}"' in rows[0]
    assert ">1<" in rows[0] and "0.500" in rows[0] and "6.0" in rows[0]  # labels, skips, median
    for panel in PANELS:
        assert f'id="{panel}"' not in html, panel
    assert "model" not in response.context and "stopping" not in response.context
    for name in plots.DRAW:
        url = reverse("active_learning:dashboard_plot", args=[project.slug, name])
        assert client.get(url).status_code == 403
    csv_url = reverse("active_learning:operating_points_csv", args=[project.slug])
    assert client.get(csv_url).status_code == 403


def test_reviewers_see_everyones_people_row(client) -> None:
    project, _ = builders.project_with_classes()
    case = CaseFactory(project=project)
    a, b = AnalystFactory(username="ana"), AnalystFactory(username="bo")
    builders.answer(case, a)
    builders.answer(case, b, skipped=True)
    _member(client, project, ProjectRole.REVIEWER)
    _, html = _page(client, project)
    assert "Not counted yet." in _rows(html, "people-table")[0]  # no snapshot yet
    from active_learning.services.dashboard import dashboard_snapshot_refresh

    dashboard_snapshot_refresh(project=project)
    _, html = _page(client, project)
    assert len(_rows(html, "people-table")) == 2 and "ana" in html and "bo" in html


def test_non_members_get_404(client) -> None:
    project = ProjectFactory()
    _member(client, ProjectFactory(), ProjectRole.ADMIN)
    for url in (
        reverse("active_learning:dashboard", args=[project.slug]),
        reverse("active_learning:dashboard_plot", args=[project.slug, "reliability"]),
        reverse("active_learning:operating_points_csv", args=[project.slug]),
    ):
        assert client.get(url).status_code == 404, url


def test_unknown_plot_is_404(client) -> None:
    project = ProjectFactory()
    _member(client, project, ProjectRole.REVIEWER)
    url = reverse("active_learning:dashboard_plot", args=[project.slug, "secrets"])
    assert client.get(url).status_code == 404


def test_the_stop_set_is_the_scoring_steps(project) -> None:
    """The dashboard's light copy of the stop-set draw is the scoring step's."""
    from active_learning.services import scoring

    ids = np.arange(1, 20_000)
    assert model_panel.STOP_SET_FRACTION == scoring.STOP_SET_FRACTION
    assert np.array_equal(
        model_panel.stop_set_mask(project=project, case_ids=ids),
        scoring.stop_set_mask(project=project, case_ids=ids),
    )


DASHBOARD_ENDPOINTS = [
    ("dashboard", [], "analyst"),
    ("dashboard_plot", ["learning-curve"], "reviewer"),
    ("operating_points_csv", [], "reviewer"),
]


@pytest.mark.parametrize("role", ["anonymous", "outsider", "analyst", "reviewer", "admin", "staff"])
@pytest.mark.parametrize(("name", "extra", "needed"), DASHBOARD_ENDPOINTS, ids=lambda e: str(e))
def test_dashboard_permission_matrix(client, role, name, extra, needed) -> None:
    """As the labeling pages: anonymous to login, outsiders 404, too low a role 403."""
    from labeling.permissions import RANK

    project = ProjectFactory()
    if role != "anonymous":
        user = AnalystFactory(is_staff=role == "staff")
        if role in RANK:
            project.memberships.create(user=user, role=role)
        client.force_login(user)
    response = client.get(reverse(f"active_learning:{name}", args=[project.slug, *extra]))
    effective = "admin" if role == "staff" else role
    if role == "anonymous":
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    elif role == "outsider":
        assert response.status_code == 404
    else:
        assert response.status_code == (200 if RANK[effective] >= RANK[needed] else 403)


def test_data_quality_counts_issues_noise_and_sources(client) -> None:
    """Open issues are flagged and unsettled; reviewed ones were decided by a reviewer; real
    ones were corrected or excluded; the reviewers' measured noise shows per class."""
    from django.utils import timezone

    from active_learning.models import LabelIssue, LabelNoiseEstimate
    from labeling.models import ResolvedLabel

    project, (retail, _crypto, guns) = builders.project_with_classes()

    def issue(name, *, flagged=True, resolved=None):
        case = CaseFactory(project=project, given_label=retail, external_id=name)
        if resolved:
            ResolvedLabel.objects.create(case=case, **resolved)
        LabelIssue.objects.create(
            project=project, case=case, given_label=retail, suggested_label=guns,
            score=0.9, self_confidence=0.1, in_prune_set=flagged,
        )  # fmt: skip

    issue("open")
    issue("open-2", resolved={"label": guns, "source": "annotation"})
    issue("unflagged", flagged=False)
    issue("confirmed", resolved={"label": retail, "source": "review"})
    issue("corrected", resolved={"label": guns, "source": "adjudicated"})
    issue("excluded", resolved={"label": None, "source": "review", "excluded": True})
    CaseFactory(project=project, given_label=guns)
    LabelNoiseEstimate.objects.create(
        project=project, given_label=retail, reviewed=3, wrong=2, excluded=1,
        measured_at=timezone.now(),
    )  # fmt: skip
    from active_learning.services.dashboard import dashboard_snapshot_refresh

    dashboard_snapshot_refresh(project=project)
    _member(client, project, ProjectRole.REVIEWER)
    response, html = _page(client, project)
    data = response.context["data"]
    assert (data.issues_open, data.issues_reviewed, data.issues_real) == (2, 3, 2)
    assert data.excluded == 1 and data.cases == 7
    assert dict(data.by_source) == {"annotation": 1, "review": 2, "adjudicated": 1}
    noise = {c.name: c for c in data.classes}
    assert noise["Retail"].given == 6 and noise["Retail"].flagged == 5
    assert noise["Retail"].reviewed_share == pytest.approx(2 / 3)
    assert noise["Firearms"].given == 1 and noise["Firearms"].detected_share == 0
    assert noise["Crypto exchange"].detected_share is None
    assert "0.667" in html and "(2 of 3)" in html
