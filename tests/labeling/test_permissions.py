"""Every role against every view: anonymous -> login, outsiders -> 404, too-low roles -> 403.

Roles are per project (ProjectMembership.role); staff count as admins everywhere. Nobody reaches
another project's cases or items by guessing ids: that is a 404, never a 500.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import reverse

from labeling.models import Annotation, ProjectRole, QueueItem, QueueKind, ResolvedLabel
from labeling.permissions import ADMIN, ANALYST, RANK, REVIEWER
from labeling.selectors_queue import project_classes_by_id, ticket_make
from labeling.selectors_review import review_card
from labeling.services.exports.jobs import EXPORT_JOB_KIND, export_folder
from labeling.services.imports.jobs import IMPORT_JOB_KIND
from tests.factories import (
    AnalystFactory,
    CaseFactory,
    LabelClassFactory,
    ProjectFactory,
    QueueItemFactory,
)
from workbench.core.models import Job, JobStatus

pytestmark = pytest.mark.django_db

# name, method, needed role (None: any logged-in user), success status
ENDPOINTS = [
    ("project_list", "get", None, 200),
    ("queue", "get", ANALYST, 200),
    ("queue_submit", "post", ANALYST, 302),
    ("queue_skip", "post", ANALYST, 302),
    ("queue_undo", "post", ANALYST, 302),
    ("queue_ping", "post", ANALYST, 204),
    ("retrain_progress", "get", ANALYST, 200),
    ("case_search", "get", REVIEWER, 200),
    ("case_detail", "get", REVIEWER, 200),
    ("case_label", "post", REVIEWER, 302),
    ("quality", "get", REVIEWER, 200),
    ("project_retrain", "post", ADMIN, 302),
    ("case_import", "get", ADMIN, 200),
    ("case_import_job", "get", ADMIN, 200),
    ("case_export", "get", ADMIN, 200),
    ("case_export", "post", ADMIN, 302),
    ("case_export_job", "get", ADMIN, 200),
    ("case_export_download", "get", ADMIN, 200),
]
ROLES = ["anonymous", "outsider", ANALYST, REVIEWER, ADMIN, "staff"]


@pytest.fixture
def world(settings, tmp_path):
    settings.WORKBENCH_DATA_DIR = tmp_path
    project = ProjectFactory(evaluation_fraction=0.0)
    label = LabelClassFactory(project=project, shortcut_key="1")
    case = CaseFactory(project=project, external_id="M-1")
    QueueItemFactory(case=case)
    job = Job.objects.create(kind=IMPORT_JOB_KIND, project=project, params={"file_name": "x.csv"})
    export = Job.objects.create(
        kind=EXPORT_JOB_KIND,
        project=project,
        status=JobStatus.SUCCEEDED,
        params={"format": "csv", "options": {}},
        result={"files": ["x.csv"], "manifest": "x.csv.manifest.json", "rows": 1},
    )
    export_folder(export.pk).mkdir(parents=True)
    (export_folder(export.pk) / "x.csv").write_text("external_id\nM-1\n")
    return {"project": project, "label": label, "case": case, "job": job, "export": export}


def _url(name: str, world: dict) -> str:
    slug = world["project"].slug
    args = {
        "project_list": [],
        "case_detail": [slug, "M-1"],
        "case_label": [slug, "M-1"],
        "case_import_job": [slug, world["job"].pk],
        "case_export_job": [slug, world["export"].pk],
        "case_export_download": [slug, world["export"].pk, "x.csv"],
    }.get(name, [slug])
    return reverse(f"labeling:{name}", args=args)


def _login(client, role: str, project):
    if role == "anonymous":
        return None
    user = AnalystFactory(is_staff=role == "staff")
    if role in RANK:
        project.memberships.create(user=user, role=role)
    client.force_login(user)
    return user


def _expected(role: str, needed: str | None, success: int) -> int:
    if role == "anonymous":
        return 302
    if needed is None:
        return success
    if role == "outsider":
        return 404
    effective = ADMIN if role == "staff" else role
    return success if RANK[effective] >= RANK[needed] else 403


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("name", "method", "needed", "success"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS]
)
def test_permission_matrix(client, world, role, name, method, needed, success) -> None:
    _login(client, role, world["project"])
    data = (
        {"submission_id": str(uuid.uuid4()), "label": world["label"].pk}
        if name == "case_label"
        else {"format": "csv", "cases": "all", "split": "all"}
        if name == "case_export" and method == "post"
        else {}
    )
    response = getattr(client, method)(_url(name, world), data)
    assert response.status_code == _expected(role, needed, success)
    if role == "anonymous":
        assert response["Location"].startswith(reverse("login"))
    if name == "case_export" and method == "post":
        started = Job.objects.filter(kind=EXPORT_JOB_KIND).exclude(pk=world["export"].pk)
        assert started.exists() == (response.status_code == 302 and role != "anonymous")
    if name == "case_label":
        wrote = Annotation.objects.filter(source="review").exists()
        assert wrote == (response.status_code == 302 and role not in ("anonymous",))


@pytest.mark.parametrize("key", ["M-2", "pk:{pk}", "{pk}"])
def test_another_projects_case_is_not_found(client, world, key) -> None:
    """A reviewer of one project asking for another project's case by id or pk gets 404."""
    other = ProjectFactory()
    foreign = CaseFactory(project=other, external_id="M-2")
    reviewer = _login(client, REVIEWER, world["project"])
    slug = world["project"].slug
    key = key.format(pk=foreign.pk)
    assert client.get(reverse("labeling:case_detail", args=[slug, key])).status_code == 404
    data = {"submission_id": str(uuid.uuid4()), "label": world["label"].pk}
    assert client.post(reverse("labeling:case_label", args=[slug, key]), data).status_code == 404
    assert not Annotation.objects.filter(annotator=reviewer).exists()


def test_another_projects_item_ticket_is_not_found(client, world) -> None:
    """A ticket for an item of project B posted to project A's queue is a 404."""
    other = ProjectFactory(evaluation_fraction=0.0)
    LabelClassFactory(project=other, shortcut_key="1")
    QueueItemFactory(case=CaseFactory(project=other))
    analyst = _login(client, ANALYST, world["project"])
    other.memberships.create(user=analyst, role=ProjectRole.ANALYST)
    html = client.get(reverse("labeling:queue", args=[other.slug])).content.decode()
    ticket = re.search(r'name="ticket" value="([^"]+)"', html).group(1)
    url = reverse("labeling:queue_submit", args=[world["project"].slug])
    assert client.post(url, {"ticket": ticket, "label": world["label"].pk}).status_code == 404
    assert not Annotation.objects.exists()


def test_unknown_project_is_404_for_everyone_but_anonymous(client) -> None:
    url = reverse("labeling:queue", args=["no-such-project"])
    assert client.get(url).status_code == 302
    client.force_login(AnalystFactory(is_staff=True))
    assert client.get(url).status_code == 404


REVIEW_ROLES = ["anonymous", "outsider", ANALYST, REVIEWER, ADMIN, "staff"]


@pytest.fixture
def review_world(world):
    """The world's case under review (its given label in question), beside its pool item."""
    case = world["case"]
    case.given_label = world["label"]
    case.save()
    world["review"] = QueueItemFactory(case=case, kind=QueueKind.REVIEW, slot=1, priority=9.0)
    return world


def _review_ticket(world: dict, user) -> str:
    """The review card's ticket as the server would sign it for `user` (an analyst can only
    hold one if they were a reviewer when the card was rendered)."""
    project = world["project"]
    item = QueueItem.objects.select_related("case").get(pk=world["review"].pk)
    card = review_card(project=project, item=item, classes=project_classes_by_id(project=project))
    return ticket_make(card=card, user=user)


@pytest.mark.parametrize("role", REVIEW_ROLES)
def test_review_card_permission_matrix(client, review_world, role) -> None:
    """Reviewers and admins get the review card; analysts get their labelling card (never a
    review item); outsiders 404; anonymous users go to the login page."""
    _login(client, role, review_world["project"])
    response = client.get(_url("queue", review_world))
    expected = {"anonymous": 302, "outsider": 404}.get(role, 200)
    assert response.status_code == expected
    html = response.content.decode() if expected == 200 else ""
    reviews = role in (REVIEWER, ADMIN, "staff")
    assert ('data-card-kind="review"' in html) == reviews
    assert ('data-card-kind="label"' in html) == (role == ANALYST)
    claimed = QueueItem.objects.get(pk=review_world["review"].pk).assigned_to_id is not None
    assert claimed == reviews


@pytest.mark.parametrize("role", REVIEW_ROLES)
def test_decision_post_permission_matrix(client, review_world, role) -> None:
    """Only reviewers and admins may answer a decision item: analysts 403, outsiders 404, and
    nothing is written unless the answer is allowed."""
    project = review_world["project"]
    user = _login(client, role, project)
    ticket = _review_ticket(review_world, user) if user is not None else "x"
    response = client.post(
        _url("queue_submit", review_world), {"ticket": ticket, "verdict": "confirm"}
    )
    expected = {"anonymous": 302, "outsider": 404, ANALYST: 403}.get(role, 302)
    assert response.status_code == expected
    allowed = role in (REVIEWER, ADMIN, "staff")
    assert Annotation.objects.filter(source="review").exists() == allowed
    resolved = ResolvedLabel.objects.filter(case=review_world["case"], source="review")
    assert resolved.exists() == allowed
    if allowed:
        assert response["Location"] == _url("queue", review_world)
