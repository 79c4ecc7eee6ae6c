"""The project list names the real champion and the last promotion decision in a sentence.

Issue 17: a champion promoted before any evaluation label existed has no macro-F1 (its metrics
are `{"n_samples": 0}`); the list said "no champion yet" while v1 was the champion.
"""

from __future__ import annotations

import html as html_lib

import pytest
from django.urls import reverse

from active_learning.ml.promotion import REASON_NO_CHAMPION
from active_learning.models import ModelStatus, ModelVersion
from labeling.models import ProjectRole
from tests.factories import AnalystFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def _list_html(client, project) -> str:
    user = AnalystFactory()
    project.memberships.create(user=user, role=ProjectRole.ANALYST)
    client.force_login(user)
    return html_lib.unescape(client.get(reverse("labeling:project_list")).content.decode())


def test_a_champion_without_evaluation_labels_is_still_the_champion(client) -> None:
    """v1, promoted with no evaluation labels yet, shows as v1, not as "no champion yet"."""
    project = ProjectFactory(name="Risk")
    ModelVersion.objects.create(
        project=project,
        number=1,
        status=ModelStatus.CHAMPION,
        metrics={"n_samples": 0},
        decision={"promote": True, "reason": REASON_NO_CHAMPION},
        decision_reason=REASON_NO_CHAMPION,
    )
    html = _list_html(client, project)
    assert '<span class="muted">no champion yet</span>' not in html
    assert "v1" in html and "not measured on evaluation labels yet" in html


def test_the_list_says_the_last_decision_in_a_sentence(client) -> None:
    """The newest decided version's decision, kept or promoted, in words."""
    project = ProjectFactory(name="Risk")
    ModelVersion.objects.create(
        project=project,
        number=1,
        status=ModelStatus.CHAMPION,
        metrics={"n_samples": 60, "macro_f1": 0.71},
        decision={"promote": True, "reason": REASON_NO_CHAMPION},
        decision_reason=REASON_NO_CHAMPION,
    )
    kept = "kept champion v1: macro-F1 0.6000 < champion 0.7100 - 0.005"
    ModelVersion.objects.create(
        project=project,
        number=2,
        status=ModelStatus.READY,
        metrics={"n_samples": 60, "macro_f1": 0.60},
        decision={"promote": False, "reason": kept, "metric": "macro_f1"},
        decision_reason=kept,
    )
    html = _list_html(client, project)
    assert "0.710" in html and "v1" in html
    assert "v2 was not promoted" in html and kept in html


def test_no_model_at_all_says_so(client) -> None:
    html = _list_html(client, ProjectFactory(name="Risk"))
    assert '<span class="muted">no champion yet</span>' in html and "was promoted" not in html
