"""The label quality page: reviewers and admins only, an empty state before the first consensus
step, the latest run's figures as stored, hostile names kept as text, and links to it."""

from __future__ import annotations

import random
import re
import uuid

import pytest
from django.urls import reverse

from labeling.models import ProjectRole
from tests.factories import AnalystFactory, LabelClassFactory, ProjectFactory
from tests.labeling.quality_runs import MATRIX_A_TO_B, consensus_cases, earlier, store_run

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
EMPTY = "No consensus yet: it runs with each retrain once analysts have labelled cases."


@pytest.fixture
def project():
    return ProjectFactory(name="Risk", consensus_threshold=0.8)


@pytest.fixture
def classes(project):
    return [
        LabelClassFactory(project=project, name="a", display_name="Gambling"),
        LabelClassFactory(project=project, name="b", display_name="Skill games"),
        LabelClassFactory(project=project, name="c", display_name="Lottery"),
    ]


def _login(client, project, role):
    user = AnalystFactory()
    project.memberships.create(user=user, role=role)
    client.force_login(user)
    return user


def _page(client, project) -> str:
    response = client.get(reverse("labeling:quality", args=[project.slug]))
    assert response.status_code == 200
    return response.content.decode()


def _text(html: str) -> str:
    """The page's words without tags, spaces collapsed."""
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    return re.sub(r" ([,.:)])", r"\1", words)


@pytest.mark.parametrize(
    ("role", "status"),
    [(ProjectRole.ANALYST, 403), (ProjectRole.REVIEWER, 200), (ProjectRole.ADMIN, 200)],
)
def test_reviewers_and_admins_only(client, project, role, status) -> None:
    _login(client, project, role)
    assert client.get(reverse("labeling:quality", args=[project.slug])).status_code == status


def test_outsiders_get_404(client, project) -> None:
    client.force_login(AnalystFactory())
    assert client.get(reverse("labeling:quality", args=[project.slug])).status_code == 404


def test_empty_state_before_the_first_consensus_step(client, project) -> None:
    _login(client, project, ProjectRole.REVIEWER)
    html = _page(client, project)
    assert EMPTY in html and "<h1>Label quality in" in html and "<table" not in html


def test_figures_of_the_latest_run(client, project, classes) -> None:
    """Alpha with interval and cases, analysts least accurate first with gold and their worst
    confusion, sources' confusions, the weakest pairs, and the case counts."""
    a, b, _c = classes
    _login(client, project, ProjectRole.REVIEWER)
    dana = AnalystFactory(username="dana", first_name="Dana", last_name="Lee")
    eli = AnalystFactory(username="eli")
    consensus_cases(project, [(a, 90), (b, 10)], disagree=7, below=4)
    store_run(
        project,
        classes,
        analysts=[(eli, 0.61, MATRIX_A_TO_B, 300, 0, 0)],
        alpha=(0.9, 0.88, 0.92, 10),
        measured_at=earlier(),
    )
    store_run(
        project,
        classes,
        analysts=[
            (dana, 0.934, MATRIX_A_TO_B, 1200, 10, 9),
            (eli, 0.712, [[0.8, 0.0, 0.2], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], 850, 0, 0),
        ],
        sources=[("mcc_rules_v2", 0.82, [[0.8, 0.15, 0.05], [0.25, 0.75, 0], [0, 0, 1]], 4000)],
        class_pairs=[{"a": a.pk, "b": b.pk, "value": 0.31, "low": 0.22, "high": 0.4, "n": 57}],
        analyst_pairs=[
            {"a": dana.pk, "b": eli.pk, "value": 0.55, "low": 0.47, "high": 0.63, "n": 212}
        ],
    )
    html = _page(client, project)
    text = _text(html)
    assert "Krippendorff's alpha 0.42 (0.39–0.44, 95% interval) over 1,415 cases" in text
    assert "Too low to trust single labels" in text
    assert re.search(r"retrain job #\d+ \(succeeded\)", text)
    analysts = re.search(r'id="analyst-table".*?</table>', html, re.S).group(0)
    # Least accurate first: eli (71.2%) before Dana (93.4%); the older run's 61% is gone.
    assert _text(analysts).index("eli") < _text(analysts).index("Dana Lee dana")
    assert "61%" not in analysts
    assert "71%" in analysts and "93%" in analysts and "9 / 10" in analysts
    assert "1,200" in analysts
    assert "says Skill games when it is Gambling, 10% (≈108 of their labels)" in _text(analysts)
    assert "says Lottery when it is Gambling, 20%" in _text(analysts)
    sources = _text(re.search(r'id="source-table".*?</table>', html, re.S).group(0))
    assert "mcc_rules_v2 82% 4,000" in sources
    assert (
        "Gambling → Skill games: 15% (≈540 labels) Gambling → Lottery: 5.0% (≈180 labels) "
        "Skill games → Gambling: 25% (≈100 labels)"
    ) in sources
    assert "Gambling vs Skill games 0.31 0.22 to 0.40 57" in text
    assert "Dana Lee dana vs eli 0.55 0.47 to 0.63 212" in text
    assert "Cases with a consensus 100 4 with two or more analyst labels" in text
    assert "Consensus disagrees with the given label 7" in text
    assert "Below the consensus threshold (0.80) 4 4 with two or more" in text
    # Every table labels its columns and rows for screen readers.
    assert html.count('<th scope="col"') >= 15 and 'scope="row"' in html


def test_hostile_names_stay_text(client, project, classes) -> None:
    a, b, _ = classes
    a.display_name = HOSTILE
    a.save()
    _login(client, project, ProjectRole.ADMIN)
    user = AnalystFactory(username=HOSTILE[:150], first_name=HOSTILE[:150])
    other = AnalystFactory()
    consensus_cases(project, [(a, 5)])
    store_run(
        project,
        classes,
        analysts=[(user, 0.5, MATRIX_A_TO_B, 30, 0, 0), (other, 0.6, MATRIX_A_TO_B, 30, 0, 0)],
        sources=[(HOSTILE[:64], 0.5, MATRIX_A_TO_B, 30)],
        class_pairs=[{"a": a.pk, "b": b.pk, "value": 0.1, "low": 0.0, "high": 0.2, "n": 9}],
        analyst_pairs=[{"a": user.pk, "b": other.pk, "value": 0.1, "low": 0, "high": 0.2, "n": 30}],
    )
    html = _page(client, project)
    body = html.split("<main", 1)[1]
    assert "<script" not in body and "<img" not in body
    assert body.count("&lt;script&gt;") >= 6  # name, username, source, class (3x), pair
    assert re.search(r'<span dir="auto">&lt;script&gt;', body)
    assert re.search(r'<th scope="row" dir="auto">&lt;script&gt;', body)


def test_blind_projects_still_show_names_to_reviewers(client, classes) -> None:
    project = classes[0].project
    project.blind_mode = True
    project.save()
    _login(client, project, ProjectRole.REVIEWER)
    store_run(
        project, classes, analysts=[(AnalystFactory(username="zoe"), 0.9, MATRIX_A_TO_B, 9, 0, 0)]
    )
    assert '<span dir="auto">zoe</span>' in _page(client, project)


def test_project_list_and_queue_link_the_page_for_reviewers_only(client, project) -> None:
    url = reverse("labeling:quality", args=[project.slug])
    _login(client, project, ProjectRole.ANALYST)
    assert url not in client.get(reverse("labeling:project_list")).content.decode()
    assert url not in client.get(reverse("labeling:queue", args=[project.slug])).content.decode()
    _login(client, project, ProjectRole.REVIEWER)
    assert url in client.get(reverse("labeling:project_list")).content.decode()
    assert url in client.get(reverse("labeling:queue", args=[project.slug])).content.decode()


def test_the_page_reads_what_the_real_consensus_step_stores(client, project, classes) -> None:
    """End to end: analysts label through the product, the retrain chain's consensus step
    stores its run, and the page shows it."""
    from active_learning.services.consensus import consensus_refresh
    from labeling.services.annotations import annotation_submit
    from tests.factories import CaseFactory

    rng = random.Random(3)
    people = [AnalystFactory(username=f"p{i}") for i in range(3)]
    for i in range(45):
        true = classes[i % 3]
        given = true if rng.random() < 0.8 else classes[(i + 1) % 3]
        case = CaseFactory(project=project, given_label=given, given_label_source="rule_q")
        for who, accuracy in zip(people, (0.95, 0.9, 0.5), strict=True):
            label = true if rng.random() < accuracy else rng.choice(classes)
            annotation_submit(
                item_or_case=case, analyst=who, submission_id=uuid.uuid4(), label=label
            )
    consensus_refresh(project=project)
    _login(client, project, ProjectRole.REVIEWER)
    text = _text(_page(client, project))
    assert "over 45 cases" in text and "rule_q" in text
    assert all(f" p{i} " in text for i in range(3))
    assert "Cases with a consensus 45 45 with two or more analyst labels" in text
