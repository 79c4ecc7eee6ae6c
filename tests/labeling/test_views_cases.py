"""Case search (id, words, metadata key=value), the case's history, and review labels."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.urls import reverse

from labeling.models import Annotation, Case, LabelClass, ProjectRole, QueueKind
from labeling.services.annotations import annotation_edit, annotation_submit, review_submit
from tests.factories import AnalystFactory, CaseFactory, ProjectFactory, QueueItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(client):
    project = ProjectFactory()
    label = LabelClass.objects.create(project=project, name="ok", shortcut_key="1")
    other = LabelClass.objects.create(project=project, name="bad", shortcut_key="2")
    case = CaseFactory(
        project=project,
        external_id="M-77",
        text="Online casino with poker tables",
        metadata={"country": "MT", "mcc": 7995},
    )
    CaseFactory(
        project=project, external_id="M-78", text="Ceramic mugs", metadata={"country": "DE"}
    )
    reviewer = AnalystFactory()
    project.memberships.create(user=reviewer, role=ProjectRole.REVIEWER)
    client.force_login(reviewer)
    return {"project": project, "case": case, "label": label, "other": other, "reviewer": reviewer}


def search(client, project, q, **extra):
    return client.get(reverse("labeling:case_search", args=[project.slug]), {"q": q}, **extra)


def test_search_by_id_redirects_to_the_case(client, world) -> None:
    response = search(client, world["project"], "M-77")
    assert response.status_code == 302 and response["Location"].endswith("/cases/M-77/")


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("casino", ["M-77"]),
        ("country=MT", ["M-77"]),
        ("mcc=7995", ["M-77"]),
        ("country=XX", []),
        ("a__b=1", []),
    ],
)
def test_search_by_text_and_metadata(client, world, q, found) -> None:
    html = search(client, world["project"], q).content.decode()
    for ext in ("M-77", "M-78"):
        assert (f">{ext}</a>" in html) == (ext in found)


def test_htmx_search_gets_the_results_partial(client, world) -> None:
    html = search(client, world["project"], "mugs", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and "M-78" in html


def test_history_shows_superseded_annotations_and_what_was_shown(client, world) -> None:
    case, analyst = world["case"], AnalystFactory(username="ann")
    world["project"].memberships.create(user=analyst, role=ProjectRole.ANALYST)
    first = annotation_submit(
        item_or_case=case,
        analyst=analyst,
        submission_id=uuid.uuid4(),
        label=world["label"],
        shown={
            "suggestion_id": world["other"].pk,
            "suggestion_p": 0.7,
            "blind": False,
            "reason": "The model is unsure about this case.",
        },
    )
    annotation_edit(
        annotation=first,
        analyst=analyst,
        submission_id=uuid.uuid4(),
        label=world["other"],
        comment="<b>changed</b>",
    )
    html = client.get(
        reverse("labeling:case_detail", args=[world["project"].slug, "M-77"])
    ).content.decode()
    assert "superseded" in html and "The model is unsure about this case." in html
    assert "&lt;b&gt;changed&lt;/b&gt;" in html and "annotation.edit" in html
    # What was shown names the suggested class, never its id.
    assert 'suggested <span dir="auto">bad</span> (0.70)' in html
    assert f"suggestion #{world['other'].pk}" not in html


def test_the_case_page_names_the_given_label_and_top_class_and_its_heading_once(
    client, world
) -> None:
    """The label issue's "given" is the case's given label (the label it checked, an analyst's,
    is named apart); a prediction kept without its top classes shows its top class; the business
    name is the heading and not repeated among the metadata."""
    from active_learning.models import LabelIssue, ModelStatus, ModelVersion, Prediction

    project, case = world["project"], world["case"]
    case.given_label = world["label"]
    case.metadata = {"business_name": "Lucky <Chips>", "country": "MT"}
    case.save()
    version = ModelVersion.objects.create(project=project, number=1, status=ModelStatus.CHAMPION)
    Prediction.objects.create(
        case=case, model_version=version, predicted_label=world["other"], confidence=0.81
    )
    LabelIssue.objects.create(
        project=project,
        case=case,
        given_label=world["other"],  # the analysts' label it checked
        suggested_label=world["label"],
        score=0.77,
        self_confidence=0.23,
    )
    html = client.get(reverse("labeling:case_detail", args=[project.slug, "M-77"])).content.decode()
    assert 'given <span dir="auto" id="issue-given">ok</span>' in html
    assert 'label checked <span dir="auto" id="issue-checked">bad</span>' in html
    predictions = html[html.index("<h2>Predictions</h2>") : html.index("<h2>Label issue</h2>")]
    assert '<span dir="auto">bad</span>: 0.81 <span class="muted">(only the top class kept)' in (
        predictions
    )
    assert "Label-issue" not in predictions  # the detector's score is no model version's
    assert html.count("Lucky &lt;Chips&gt;") == 1  # the heading, not again among the metadata
    assert '<dt dir="auto">business_name</dt>' not in html


def test_the_case_pages_label_issue_column_shows_the_score_of_an_evaluation_case(
    client, world
) -> None:
    """The label-issue score of a case (here of the evaluation split) shows in the page's
    label-issue column, read from the label issue: with the suggestion, its probability and
    the views that flag it."""
    from active_learning.models import LabelIssue

    project, case = world["project"], world["case"]
    Case.objects.filter(pk=case.pk).update(split="eval", given_label=world["label"])
    LabelIssue.objects.create(
        project=project,
        case=case,
        given_label=world["label"],
        suggested_label=world["other"],
        suggested_p=0.86,
        score=0.912,
        self_confidence=0.088,
        in_prune_set=True,
        views=["embedding model"],
    )
    html = client.get(reverse("labeling:case_detail", args=[project.slug, "M-77"])).content.decode()
    assert '<td id="label-issue-score">0.912</td>' in html
    assert '<td id="issue-suggestion"><span dir="auto">bad</span> (0.86)</td>' in html
    assert '<td id="issue-views">embedding model</td>' in html
    assert "scored by the pool's fold models, never trained on" in html


def test_the_case_page_shows_the_given_labels_source_and_its_changes(
    client, world, tmp_path
) -> None:
    """The given label with its source (escaped); a re-import's change of source is in the
    history's audit events."""
    from labeling.services.imports import case_import

    project, case = world["project"], world["case"]
    page = reverse("labeling:case_detail", args=[project.slug, "M-77"])
    path = tmp_path / "v2.jsonl"
    row = {"id": "M-77", "text": case.text, "label": "ok", "label_source": "<b>vendor</b>"}
    path.write_text(json.dumps({**row, **case.metadata}) + "\n", encoding="utf-8")
    assert case_import(project=project, path=path, update=True).ok
    html = client.get(page).content.decode()
    assert (
        '<span class="muted small" id="label-source">from '
        '<span dir="auto">&lt;b&gt;vendor&lt;/b&gt;</span></span>' in html
    )
    events = html[html.index("<h2>Audit events</h2>") :]
    change = events[events.index('class="small label-change"') :]
    change = change[: change.index("</div>")]
    assert re.sub(r"<[^>]+>", "", change).endswith(
        "given label none from import → ok from &lt;b&gt;vendor&lt;/b&gt;"
    )


def test_reviewer_labels_outside_the_queue(client, world) -> None:
    url = reverse("labeling:case_label", args=[world["project"].slug, f"pk:{world['case'].pk}"])
    data = {"submission_id": str(uuid.uuid4()), "label": world["other"].pk, "noise_flag": "on"}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302  # replay
    annotation = Annotation.objects.get()
    assert annotation.source == "review" and annotation.noise_flag and annotation.queue_item is None
    assert annotation.shown["page"] == "case"


def test_a_reviewer_on_the_case_page_overrules_an_analyst(client, world) -> None:
    """Before the authority order this was a tie ("no label"); the reviewer's label now stands."""
    from labeling.models import ResolvedLabel

    case = world["case"]
    annotation_submit(
        item_or_case=case,
        analyst=AnalystFactory(),
        submission_id=uuid.uuid4(),
        label=world["label"],
    )
    url = reverse("labeling:case_label", args=[world["project"].slug, f"pk:{case.pk}"])
    data = {"submission_id": str(uuid.uuid4()), "label": world["other"].pk}
    assert client.post(url, data).status_code == 302
    resolved = ResolvedLabel.objects.get(case=case)
    assert (resolved.label, resolved.source) == (world["other"], "review")


def test_a_review_label_of_a_text_changed_after_render_is_stored_stale(client, world) -> None:
    """The case page's form carries the rendered text's hash in a hidden field."""
    import re

    project, case = world["project"], world["case"]
    html = client.get(reverse("labeling:case_detail", args=[project.slug, "M-77"])).content.decode()
    rendered = re.search(r'name="content_hash" value="([0-9a-f]{64})"', html).group(1)
    assert rendered == case.content_hash
    Case.objects.filter(pk=case.pk).update(text="Changed", content_hash="e" * 64)
    url = reverse("labeling:case_label", args=[project.slug, f"pk:{case.pk}"])
    data = {
        "submission_id": str(uuid.uuid4()),
        "label": world["label"].pk,
        "content_hash": rendered,
    }
    assert client.post(url, data).status_code == 302
    assert Annotation.objects.get().content_hash == rendered


@pytest.mark.postgres
def test_text_search_uses_the_gin_index(world) -> None:
    """On PostgreSQL the words of a search are matched through migration 0011's GIN index: the
    statements the search itself runs are explained, not an expression rebuilt here."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from labeling.selectors_search import SearchFilters, case_search

    case = world["case"]
    case.metadata = {"business_name": "Bright Fashion"}
    case.save()
    # Enough other cases of the project that reading them all is plainly the worse plan.
    Case.objects.bulk_create(
        CaseFactory.build(project=world["project"], external_id=f"F-{i}") for i in range(2000)
    )
    with connection.cursor() as cursor:
        # Another test's bulk load (rolled back) can leave thousands of entries in the index's
        # pending list, which the planner costs as part of every scan of it.
        cursor.execute("SELECT gin_clean_pending_list('case_name_text_search'::regclass)")
        cursor.execute(f"ANALYZE {Case._meta.db_table}")
    with CaptureQueriesContext(connection) as ran:
        page = case_search(project=world["project"], filters=SearchFilters(query="fashion"))
    assert [r.case.external_id for r in page.rows] == ["M-77"]
    by_words = [
        q["sql"]
        for q in ran.captured_queries
        if "@@" in q["sql"] and not q["sql"].lstrip().upper().startswith("EXPLAIN")
    ]
    assert by_words, [q["sql"] for q in ran.captured_queries]
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        plans = []
        for sql in by_words:
            cursor.execute(f"EXPLAIN {sql}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
        cursor.execute("RESET enable_seqscan")
    assert any("case_name_text_search" in plan for plan in plans), plans


def test_an_excluded_case_is_marked_on_its_page_in_search_and_in_history(client, world) -> None:
    """The case page says who excluded the case and why, and the history shows the decision's
    verdict and where a group member's copy came from; search results mark it too."""
    project, label = world["project"], world["label"]
    Case.objects.filter(project=project).update(given_label=label)
    head = Case.objects.get(external_id="M-78")
    item = QueueItemFactory(case=head, kind=QueueKind.REVIEW, group=[world["case"].pk])
    review_submit(
        item=item,
        reviewer=world["reviewer"],
        submission_id=uuid.uuid4(),
        verdict="exclude",
        exclude_reason="not a merchant",
        apply_group=True,
    )
    page = reverse("labeling:case_detail", args=[project.slug, "M-77"])
    html = client.get(page).content.decode()
    banner = html[html.index('id="excluded-banner"') :]
    banner = banner[: banner.index("</p>")]
    assert world["reviewer"].username in banner and "not a merchant" in banner
    assert "applied from the decision on case" in banner and ">M-78</a>" in banner
    assert "applied from the decision on case" in html[html.index('class="history"') :]
    head_html = client.get(reverse("labeling:case_detail", args=[project.slug, "M-78"])).content
    head_html = head_html.decode()
    assert 'id="excluded-banner"' in head_html
    assert "applied to 1 near-duplicate too" in head_html
    results = search(client, project, "casino").content.decode()
    assert "status-excluded" in results
    assert "status-excluded" not in search(client, project, "nothing-like-it").content.decode()


def test_a_decision_shows_its_verdict_in_the_history(client, world) -> None:
    case = world["case"]
    case.given_label = world["label"]
    case.save()
    item = QueueItemFactory(case=case, kind=QueueKind.REVIEW)
    review_submit(
        item=item, reviewer=world["reviewer"], submission_id=uuid.uuid4(), verdict="confirm"
    )
    html = client.get(
        reverse("labeling:case_detail", args=[world["project"].slug, "M-77"])
    ).content.decode()
    assert "Kept the given label" in html and 'id="excluded-banner"' not in html


def page_of(client, project, **params):
    return client.get(reverse("labeling:case_search", args=[project.slug]), params)


def test_the_search_page_lists_the_latest_changes_and_pages_on(client, world) -> None:
    """No words, no filters: every case, last change first, 50 a page; the next page's link
    carries its cursor (and works without JavaScript); htmx gets the results alone."""
    from labeling.selectors_search import PAGE_SIZE
    from tests.factories import CaseFactory

    project = world["project"]
    for i in range(PAGE_SIZE):
        CaseFactory(project=project, external_id=f"N-{i:03d}")
    html = page_of(client, project).content.decode()
    assert html.count("<tr>") + html.count('<tr class="excluded">') == PAGE_SIZE + 1  # + header
    assert ">N-049</a>" in html and ">M-77</a>" not in html  # the oldest two are on page 2
    link = re.search(r'href="\?after=([A-Za-z0-9_-]+)"', html)
    assert link is not None and 'rel="next"' in html
    second = page_of(client, project, after=link.group(1)).content.decode()
    assert ">M-77</a>" in second and ">M-78</a>" in second and ">N-049</a>" not in second
    assert 'rel="next"' not in second and "First page" in second
    swap = client.get(
        reverse("labeling:case_search", args=[project.slug]),
        {"after": link.group(1)},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "<html" not in swap and swap.lstrip().startswith('<div id="search-results">')


def test_business_names_are_found_shown_and_escaped(client, world) -> None:
    case = world["case"]
    case.metadata = {"business_name": "Bright <b>Fashion</b>"}
    case.save()
    html = search(client, world["project"], "Bright Fashion").content.decode()
    assert ">M-77</a>" in html and ">M-78</a>" not in html
    assert "Bright &lt;b&gt;Fashion&lt;/b&gt;" in html and "<b>Fashion</b>" not in html


def test_an_id_in_another_case_opens_the_case_and_a_prefix_lists_cases(client, world) -> None:
    response = search(client, world["project"], "m-77")
    assert response.status_code == 302 and response["Location"].endswith("/cases/M-77/")
    html = search(client, world["project"], "m-7").content.decode()
    assert ">M-77</a>" in html and ">M-78</a>" in html


def test_filters_and_sort_stay_in_the_url_and_the_form(client, world) -> None:
    """A bookmarked search shows its filters chosen again; only matching cases are listed."""
    project = world["project"]
    Case.objects.filter(external_id="M-77").update(given_label=world["label"], split="eval")
    html = page_of(
        client, project, given="ok", resolved="ok", split="eval", sort="issue", q="casino"
    ).content.decode()
    assert ">M-77</a>" in html and ">M-78</a>" not in html
    assert html.count('<option value="ok" selected>') == 2  # given and resolved
    assert '<option value="eval" selected>' in html and '<option value="issue" selected>' in html
    # A score range keeps only cases the detector scored (M-77 has no issue yet).
    scored = page_of(client, project, score_min="0", q="casino").content.decode()
    assert ">M-77</a>" not in scored and 'name="score_min" value="0' in scored


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"given": "no-such"}, "Given label: No class named “no-such” in this project."),
        ({"resolved": "<x>"}, "Resolved label: No class named “&lt;x&gt;” in this project."),
        ({"changed_from": "2026-13-45"}, "Changed: Enter a valid date."),
        (
            {"changed_from": "2026-03-02", "changed_to": "2026-03-01"},
            "Changed: The first day comes after the last.",
        ),
        ({"score_min": "0.9", "score_max": "0.1"}, "The lowest issue score is above the highest."),
        ({"score_min": "2"}, "Issue score: Ensure this value is less than or equal to 1.0."),
        ({"score_max": "lots"}, "Issue score: Enter a number."),
        ({"labelled_by": "nobody"}, "Labelled by: No member of this project is called “nobody”."),
        ({"sort": "alphabet"}, "Sort by: Select a valid choice."),
        ({"after": "not-a-cursor"}, "This page link is broken or out of date"),
        ({"split": "train"}, "Split: Select a valid choice."),
    ],
)
def test_bad_parameters_get_a_message_not_an_error(client, world, params, message) -> None:
    response = page_of(client, world["project"], **params)
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html and 'id="search-errors"' in html and "<table" not in html


def test_a_page_link_of_another_sort_is_refused_in_words(client, world) -> None:
    from labeling.selectors_search import SearchCursor

    cursor = SearchCursor("issue", 0, 0.5, world["case"].pk).dumps()
    html = page_of(client, world["project"], after=cursor).content.decode()
    assert "This page link is broken or out of date" in html


def test_labelled_by_me_and_by_an_analyst(client, world) -> None:
    project, reviewer = world["project"], world["reviewer"]
    analyst = AnalystFactory(username="ann")
    project.memberships.create(user=analyst, role=ProjectRole.ANALYST)
    other = Case.objects.get(external_id="M-78")
    for who, case in ((reviewer, world["case"]), (analyst, other)):
        annotation_submit(
            item_or_case=case, analyst=who, submission_id=uuid.uuid4(), label=world["label"]
        )
    mine = page_of(client, project, labelled_by="me").content.decode()
    assert ">M-77</a>" in mine and ">M-78</a>" not in mine
    theirs = page_of(client, project, labelled_by="ann").content.decode()
    assert ">M-78</a>" in theirs and ">M-77</a>" not in theirs
    assert '<option value="ann" selected>ann</option>' in theirs
    swap = client.get(
        reverse("labeling:case_search", args=[project.slug]),
        {"labelled_by": "ann"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert ">M-78</a>" in swap and ">M-77</a>" not in swap and "<select" not in swap


def test_results_show_given_resolved_and_predicted_labels(client, world) -> None:
    from active_learning.models import LabelIssue, ModelStatus, ModelVersion, Prediction

    project, case = world["project"], world["case"]
    case.given_label = world["label"]
    case.save()
    version = ModelVersion.objects.create(project=project, number=1, status=ModelStatus.CHAMPION)
    Prediction.objects.create(
        case=case, model_version=version, predicted_label=world["other"], confidence=0.81
    )
    LabelIssue.objects.create(
        project=project, case=case, score=0.93, self_confidence=0.07, in_prune_set=True
    )
    review_submit(
        item=QueueItemFactory(case=case, kind=QueueKind.REVIEW),
        reviewer=world["reviewer"],
        submission_id=uuid.uuid4(),
        verdict="relabel",
        label=world["other"],
    )
    html = page_of(client, project, issue="on").content.decode()
    row = html[html.rindex("<tr", 0, html.index(">M-77</a>")) :]
    row = row[: row.index("</tr>")]
    cells = [re.sub(r"<[^>]+>", " ", c).split() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
    assert cells[2:] == [
        ["Pool"],
        ["ok", "from", "import"],  # the given label and its source
        ["bad", "reviewed"],  # the resolved label, and how far it is trusted
        ["bad", "0.81"],  # the champion's prediction
        ["0.93", "flagged"],  # the label issue's score
        cells[7],  # the last change
    ]
    assert ">M-78</a>" not in html  # no label issue


def test_a_history_restore_gets_the_whole_page(client, world) -> None:
    """htmx asks for the full page when going back to a search no longer in its cache."""
    response = client.get(
        reverse("labeling:case_search", args=[world["project"].slug]),
        {"q": "casino"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )
    assert "<html" in response.content.decode()
