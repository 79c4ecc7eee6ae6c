"""The label-issue list shows open issues by default, rounded, filterable by status and class;
the measured noise of the given labels is listed read-only."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from active_learning.models import LabelIssue, LabelNoiseEstimate
from labeling.models import ResolvedLabel, Tier
from tests.factories import CaseFactory, LabelClassFactory, ProjectFactory

pytestmark = pytest.mark.django_db

URL = reverse("admin:active_learning_labelissue_changelist")


@pytest.fixture
def issues():
    """One issue of each status, plus one the detector no longer flags, in one project; and an
    open issue of another class."""
    project = ProjectFactory()
    retail = LabelClassFactory(project=project, name="retail", tier=Tier.SUPPORTABLE)
    gambling = LabelClassFactory(project=project, name="gambling", tier=Tier.PROHIBITED)
    crypto = LabelClassFactory(project=project, name="crypto", tier=Tier.RESTRICTED)
    made = {}

    def issue(name, *, given=retail, flagged=True, score=0.5, resolved=None):
        case = CaseFactory(project=project, given_label=given, external_id=f"M-{name}")
        if resolved is not None:
            ResolvedLabel.objects.create(case=case, **resolved)
        made[name] = LabelIssue.objects.create(
            project=project,
            case=case,
            given_label=given,
            suggested_label=gambling,
            suggested_p=0.87654,
            score=score,
            self_confidence=1 - score,
            in_prune_set=flagged,
        )

    issue("open", score=0.91234)
    issue("open-analyst", resolved={"label": gambling, "source": "annotation"})
    issue("open-crypto", given=crypto)
    issue("not-flagged", flagged=False)
    issue("confirmed", flagged=False, resolved={"label": retail, "source": "review"})
    issue("corrected", resolved={"label": gambling, "source": "adjudicated"})
    issue("excluded", resolved={"label": None, "source": "review", "excluded": True})
    issue("ambiguous", resolved={"label": None, "source": "review", "doubtful": True})
    return project, made, {"retail": retail, "crypto": crypto}


def _listed(admin_client, **params) -> set[str]:
    response = admin_client.get(URL, params)
    assert response.status_code == 200
    return {issue.case.external_id[2:] for issue in response.context["cl"].result_list}


def test_the_list_shows_open_issues_by_default(admin_client, issues) -> None:
    """Open: in the prune set, not decided by a reviewer or adjudicator, not excluded."""
    assert _listed(admin_client) == {"open", "open-analyst", "open-crypto"}
    assert _listed(admin_client, status="open") == {"open", "open-analyst", "open-crypto"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("confirmed", {"confirmed"}),
        ("corrected", {"corrected"}),
        ("excluded", {"excluded"}),
        (
            "all",
            {
                "open", "open-analyst", "open-crypto", "not-flagged", "confirmed", "corrected",
                "excluded", "ambiguous",
            },
        ),
    ],
)  # fmt: skip
def test_the_status_filter_selects_what_the_decisions_did(
    admin_client, issues, status, expected
) -> None:
    assert _listed(admin_client, status=status) == expected


def test_the_class_filter_selects_the_doubted_label(admin_client, issues) -> None:
    project, _, classes = issues
    crypto = classes["crypto"]
    assert _listed(admin_client, given_label=crypto.pk) == {"open-crypto"}
    both = _listed(admin_client, given_label=classes["retail"].pk, status="all")
    assert "open-crypto" not in both and "open" in both
    # Filtered on the project, the class filter offers that project's classes by name.
    response = admin_client.get(URL, {"project__id__exact": project.pk})
    spec = next(s for s in response.context["cl"].filter_specs if s.parameter_name == "given_label")
    assert [title for _, title in spec.lookup_choices] == ["retail", "gambling", "crypto"]


def test_scores_are_rounded_and_each_row_states_its_decision(admin_client, issues) -> None:
    page = admin_client.get(URL, {"status": "all"}).content.decode()
    assert "0.912" in page and "0.91234" not in page
    assert "0.877" in page and "0.87654" not in page
    for decision in ("confirmed", "corrected", "excluded", "ambiguous"):
        assert f'<td class="field-decision">{decision}</td>' in page


def test_the_noise_estimates_are_listed_read_only(admin_client, issues) -> None:
    project, _, classes = issues
    row = LabelNoiseEstimate.objects.create(
        project=project,
        given_label=classes["retail"],
        reviewed=8,
        wrong=3,
        excluded=1,
        measured_at=timezone.now(),
    )
    url = reverse("admin:active_learning_labelnoiseestimate_changelist")
    page = admin_client.get(url).content.decode()
    assert "0.375" in page
    change = reverse("admin:active_learning_labelnoiseestimate_change", args=[row.pk])
    assert admin_client.post(change, {"reviewed": 1}).status_code == 403
    add = reverse("admin:active_learning_labelnoiseestimate_add")
    assert add not in page and admin_client.get(add).status_code == 403


def test_the_list_costs_the_same_queries_for_many_rows(admin_client, issues) -> None:
    """Related rows come joined (no query per row): the page's query count does not grow."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    project, made, classes = issues

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(URL, {"status": "all"}).status_code == 200
        return len(queries)

    few = count()
    for n in range(20):
        case = CaseFactory(project=project, given_label=classes["retail"])
        ResolvedLabel.objects.create(case=case, label=classes["crypto"], source="review")
        LabelIssue.objects.create(
            project=project, case=case, given_label=classes["retail"], score=0.5,
            self_confidence=0.5, in_prune_set=bool(n % 2), group=[made["open"].case_id],
        )  # fmt: skip
    assert count() == few
