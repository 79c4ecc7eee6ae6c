"""The review card on the queue page: what a reviewer decides from, each verdict through the
view, the group checkbox, reviewers only, blind projects, and the analyst's new `y`."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling.contracts import PickReason
from labeling.forms import ERR_NEED_DETAIL
from labeling.models import (
    Annotation,
    AnnotationSource,
    LabelClass,
    ProjectRole,
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolutionSource,
    ResolvedLabel,
    Tier,
)
from labeling.selectors_queue import project_classes_by_id, queue_page_context, ticket_make
from labeling.selectors_review import review_card
from labeling.services.annotations.review import ERR_NEED_REASON
from labeling.views.queue import ERR_NEED_VERDICT
from tests.factories import (
    AnalystFactory,
    AnnotationFactory,
    CaseFactory,
    ProjectFactory,
    QueueItemFactory,
)

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
REASON = "The detector thinks the given label is wrong (score 0.91)."


def url(name, project):
    return reverse(f"labeling:{name}", args=[project.slug])


def ticket_of(html: str) -> str:
    return re.search(r'name="ticket" value="([^"]+)"', html).group(1)


def member(project, role=ProjectRole.ANALYST, **fields):
    user = AnalystFactory(**fields)
    project.memberships.create(user=user, role=role)
    return user


@pytest.fixture
def world():
    """A review item on a case labelled `ok` that the detector thinks is `gambling`, with two
    analysts' answers, five neighbours in every label state, and a near-duplicate group."""
    project = ProjectFactory(evaluation_fraction=0.0)
    ok = LabelClass.objects.create(project=project, name="ok", shortcut_key="1", order=0)
    gambling = LabelClass.objects.create(
        project=project,
        name="gambling",
        display_name="Gambling",
        tier=Tier.PROHIBITED,
        shortcut_key="2",
        order=1,
        guideline="Casinos, betting, lotteries.",
    )
    skill = LabelClass.objects.create(
        project=project, name="skill", display_name="Skill games", shortcut_key="3", order=2
    )
    case = CaseFactory(
        project=project,
        external_id="M-100",
        text="Poker nights and sports bets, paid in chips",
        given_label=ok,
        metadata={"business_name": "Lucky Chips", "mcc": 7995},
    )
    # Neighbours: verified (analysts), doubtful, given, excluded, verified (review).
    states = [
        {"label": gambling, "source": ResolutionSource.ANNOTATION},
        {"label": ok, "source": ResolutionSource.GIVEN, "doubtful": True},
        None,
        {"label": None, "source": ResolutionSource.REVIEW, "excluded": True},
        {"label": skill, "source": ResolutionSource.REVIEW},
    ]
    neighbours = []
    for i, state in enumerate(states):
        near = CaseFactory(project=project, text=f"Neighbour {i} runs a card room", given_label=ok)
        if state is not None:
            ResolvedLabel.objects.create(case=near, **state)
        neighbours.append(near)
    group = [
        CaseFactory(
            project=project, external_id=f"DUP-{i}", text=f"Poker nights {i}", given_label=ok
        )
        for i in range(2)
    ]
    odd = CaseFactory(project=project, external_id="DUP-X", given_label=gambling)
    item = QueueItemFactory(
        case=case,
        kind=QueueKind.REVIEW,
        priority=5.0,
        reason=PickReason(strategy="label_issue", sentence=REASON, sentence_blind=REASON).to_json(),
        suggestion=gambling,
        suggestion_p=0.83,
        similar_cases=[
            {"case_id": c.pk, "label_id": ok.pk, "similarity": round(0.95 - i * 0.01, 2)}
            for i, c in enumerate(neighbours)
        ],
        group=[c.pk for c in group] + [odd.pk],
    )
    alice = member(project, username="alice")
    bob = member(project, username="bob")
    AnnotationFactory(case=case, annotator=alice, label=gambling, comment="They run a casino.")
    AnnotationFactory(case=case, annotator=bob, label=None, noise_flag=True, ambiguous=True)
    reviewer = member(project, ProjectRole.REVIEWER, username="rita")
    return {
        "project": project,
        "classes": (ok, gambling, skill),
        "case": case,
        "item": item,
        "group": group,
        "odd": odd,
        "neighbours": neighbours,
        "analysts": (alice, bob),
        "reviewer": reviewer,
    }


def review_page(client, world, **extra) -> str:
    client.force_login(world["reviewer"])
    return client.get(url("queue", world["project"]), **extra).content.decode()


def card_part(html: str) -> str:
    return html[html.index('id="queue-card"') : html.index('id="guidelines"')]


def test_a_reviewer_gets_the_review_card_with_what_a_decision_needs(client, world) -> None:
    """The case, its given label and source, the reason, the detector's suggestion with its
    out-of-fold probability, the answers with names, the neighbours' labels and states, the
    group with its checkbox, the verdict keys and the guidelines."""
    html = review_page(client, world)
    card = card_part(html)
    assert 'data-card-kind="review"' in card and "Lucky Chips" in card
    assert "Poker nights and sports bets" in card and '<dt dir="auto">mcc</dt>' in card
    assert re.search(r'id="given-label">Given label: <span[^>]*>ok</span>', card)
    assert 'id="label-source">from <span dir="auto">import</span>' in card
    assert REASON in card
    assert re.search(r"detector suggests <strong[^>]*>Gambling</strong>", card)
    assert 'class="proba">0.83<' in card
    # The analysts' answers, with names (the project is not blind).
    answers = card[card.index('class="answers-list"') :]
    answers = answers[: answers.index("</ul>")]
    assert "alice" in answers and "They run a casino." in answers and "Gambling" in answers
    assert "bob" in answers and "flagged as wrong" in answers and "ambiguous" in answers
    # Five neighbours with their current labels and states.
    similar = card[card.index('class="similar-list"') :]
    items = re.findall(r"<li.*?</li>", similar[: similar.index("</ol>")], flags=re.S)
    assert len(items) == 5
    states = [re.search(r'class="status status-(\w+)"', li).group(1) for li in items]
    assert states == ["verified", "doubtful", "given", "excluded", "reviewed"]
    assert "verified by an analyst" in items[0] and ">reviewed<" in items[4]
    assert "Gambling" in items[0] and "Skill games" in items[4] and 'class="excluded"' in items[3]
    assert "similar-label" not in items[3]  # an excluded case has no label
    # The group: the two same-label near-duplicates, not the one with another given label.
    assert "Apply this decision to these 2 cases too" in card
    assert "DUP-0" in card and "DUP-1" in card and "DUP-X" not in card
    assert 'name="apply_group" id="apply-group" aria-keyshortcuts="m"' in card
    # The verdicts and their keys.
    assert re.search(r'name="verdict" value="confirm" data-key="y"', card)
    assert re.search(r'name="verdict" value="accept" class="primary" data-accept', card)
    assert 'name="verdict" value="exclude"' in card and 'id="exclude-reason" required' in card
    for reason in ("not a merchant", "duplicate", "unreadable", "other"):
        assert f'<option value="{reason}">' in card
    assert 'data-key="2"' in card and 'name="noise_flag"' not in card
    # The page's guidelines and the help, showing the review keys.
    assert "Casinos, betting, lotteries." in html
    assert (
        '<tbody data-keys-for="review">' in html and '<tbody data-keys-for="label" hidden>' in html
    )
    item = QueueItem.objects.get(pk=world["item"].pk)
    assert item.status == QueueStatus.CLAIMED and item.assigned_to == world["reviewer"]


def test_the_htmx_card_is_the_review_partial(client, world) -> None:
    html = review_page(client, world, **HX)
    assert "<html" not in html and 'data-card-kind="review"' in html and "Lucky Chips" in html


def test_the_review_card_takes_a_fixed_number_of_queries(world) -> None:
    """Building and rendering the card costs the same few queries whatever the number of
    answers, neighbours and group members (no N+1)."""
    project, item, reviewer = world["project"], world["item"], world["reviewer"]

    def count() -> int:
        fresh = QueueItem.objects.select_related("case").get(pk=item.pk)
        with CaptureQueriesContext(connection) as queries:
            context = queue_page_context(project=project, user=reviewer, current=fresh)
            html = render_to_string("labeling/queue.html#card", context)
        assert 'data-card-kind="review"' in html
        return len(queries)

    count()  # a process's first card also loads the project's classes, then kept (cached)
    before = count()
    ok = world["classes"][0]
    for _ in range(4):
        AnnotationFactory(case=world["case"], annotator=member(project), label=ok)
    more = [CaseFactory(project=project, given_label=ok) for _ in range(5)]
    QueueItem.objects.filter(pk=item.pk).update(group=item.group + [c.pk for c in more])
    # 4, one for the label issue (the model side's hook), one for the progress, undo and
    # classes' key
    assert count() == before <= 6


@pytest.mark.parametrize(
    ("data", "label", "excluded"),
    [
        ({"verdict": "confirm"}, "ok", False),
        ({"verdict": "accept"}, "gambling", False),
        ({"label": "skill"}, "skill", False),
        (
            {"verdict": "exclude", "exclude_reason": "duplicate", "exclude_detail": "of M-7"},
            None,
            True,
        ),
        ({"verdict": "ambiguous", "ambiguous": "on"}, None, False),
    ],
    ids=["confirm", "accept", "relabel", "exclude", "ambiguous"],
)
def test_each_verdict_resolves_the_case(client, world, data, label, excluded) -> None:
    """Each verdict posted from the review card becomes the case's review resolution."""
    by_name = {c.name: c for c in world["classes"]}
    html = review_page(client, world)
    post = {"ticket": ticket_of(html), "comment": " checked the website ", **data}
    if "label" in post:
        post["label"] = by_name[post["label"]].pk
    body = client.post(url("queue_submit", world["project"]), post, **HX).content.decode()
    assert 'role="alert"' not in body
    resolved = ResolvedLabel.objects.get(case=world["case"])
    assert resolved.source == ResolutionSource.REVIEW and resolved.excluded == excluded
    assert resolved.label == (by_name[label] if label else None)
    decision = Annotation.objects.get(annotator=world["reviewer"])
    assert decision.source == AnnotationSource.REVIEW and decision.comment == "checked the website"
    assert decision.shown["verdict"] == (data.get("verdict") or "relabel")
    assert decision.shown["kind"] == "review" and decision.duration_ms is not None
    if excluded:
        assert decision.exclude_reason == "duplicate: of M-7"
    if data.get("verdict") == "ambiguous":
        assert resolved.doubtful and decision.ambiguous
    # The group was not asked for: its members are untouched.
    assert not ResolvedLabel.objects.filter(case__in=world["group"]).exists()
    assert QueueItem.objects.get(pk=world["item"].pk).status == QueueStatus.DONE


def test_the_group_checkbox_applies_the_decision_and_undo_takes_it_back(client, world) -> None:
    project, gambling = world["project"], world["classes"][1]
    html = review_page(client, world)
    post = {"ticket": ticket_of(html), "label": gambling.pk, "apply_group": "on"}
    html = client.post(url("queue_submit", project), post, **HX).content.decode()
    for case in [world["case"], *world["group"]]:
        resolved = ResolvedLabel.objects.get(case=case)
        assert (resolved.label, resolved.source) == (gambling, ResolutionSource.REVIEW)
    assert not ResolvedLabel.objects.filter(case=world["odd"]).exists()
    action = re.search(r'name="action_id" value="(\d+)"', html).group(1)
    html = client.post(url("queue_undo", project), {"action_id": action}, **HX).content.decode()
    assert "Lucky Chips" in html and 'data-card-kind="review"' in html  # the case is back
    for case in [world["case"], *world["group"]]:
        assert ResolvedLabel.objects.get(case=case).source != ResolutionSource.REVIEW


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"verdict": "exclude"}, ERR_NEED_REASON),
        ({"verdict": "exclude", "exclude_reason": "other"}, ERR_NEED_DETAIL),
        ({}, ERR_NEED_VERDICT),
        ({"verdict": "exclude", "exclude_reason": "made up"}, "Select a valid choice."),
    ],
    ids=["no-reason", "other-without-words", "no-verdict", "unknown-reason"],
)
def test_a_bad_decision_comes_back_on_the_card_and_writes_nothing(
    client, world, data, message
) -> None:
    html = review_page(client, world)
    body = client.post(
        url("queue_submit", world["project"]), {"ticket": ticket_of(html), **data}, **HX
    ).content.decode()
    assert 'role="alert"' in body and message.split(":")[0] in body.replace("&#x27;", "'")
    assert "Lucky Chips" in body  # the same case again
    assert not Annotation.objects.filter(annotator=world["reviewer"]).exists()
    assert not ResolvedLabel.objects.filter(case=world["case"]).exists()


def _analyst_ticket(world, analyst) -> str:
    """A review card's ticket signed for an analyst (as if they had been a reviewer when it was
    rendered and were demoted since)."""
    project = world["project"]
    item = QueueItem.objects.select_related("case").get(pk=world["item"].pk)
    card = review_card(project=project, item=item, classes=project_classes_by_id(project=project))
    return ticket_make(card=card, user=analyst)


@pytest.mark.parametrize("view", ["queue_submit", "queue_skip"])
def test_an_analyst_cannot_answer_a_decision_item(client, world, view) -> None:
    """An analyst posting a decision ticket gets 403 and nothing is written."""
    alice = world["analysts"][0]
    ticket = _analyst_ticket(world, alice)
    client.force_login(alice)
    before = Annotation.objects.count()
    for extra in ({}, HX):
        response = client.post(
            url(view, world["project"]), {"ticket": ticket, "verdict": "confirm"}, **extra
        )
        assert response.status_code == 403
    assert Annotation.objects.count() == before
    assert not ResolvedLabel.objects.filter(case=world["case"]).exists()
    assert QueueItem.objects.get(pk=world["item"].pk).status == QueueStatus.OPEN


def test_an_analyst_never_gets_the_review_card(client, world) -> None:
    QueueItemFactory(case=CaseFactory(project=world["project"]), kind=QueueKind.POOL)
    client.force_login(world["analysts"][0])
    html = client.get(url("queue", world["project"])).content.decode()
    assert 'data-card-kind="label"' in html and "Lucky Chips" not in html
    assert 'name="verdict"' not in html


def test_blind_projects_hide_analyst_names_on_the_review_card(client, world) -> None:
    project = world["project"]
    project.blind_mode = True
    project.save()
    card = card_part(review_page(client, world))
    assert "alice" not in card and "bob" not in card
    assert "Analyst 1" in card and "Analyst 2" in card and "names hidden" in card
    # The reviewer still sees what the review is about.
    assert 'id="given-label"' in card and "0.83" in card and "similar-label" in card


def test_an_analysts_noise_flag_makes_a_review_item_in_the_same_request(client, world) -> None:
    """`n` posted through the queue asks a reviewer at once; the reviewer's next card is it."""
    project, ok = world["project"], world["classes"][0]
    QueueItem.objects.filter(pk=world["item"].pk).update(status=QueueStatus.CANCELLED)
    flagged = CaseFactory(project=project, given_label=ok, external_id="FLAG-1")
    QueueItemFactory(case=flagged, kind=QueueKind.POOL)
    alice = world["analysts"][0]
    client.force_login(alice)
    html = client.get(url("queue", project)).content.decode()
    assert "FLAG-1" in html
    client.post(
        url("queue_submit", project), {"ticket": ticket_of(html), "label": "", "noise_flag": "on"}
    )
    review = QueueItem.objects.get(case=flagged, kind=QueueKind.REVIEW)
    assert review.status == QueueStatus.OPEN and review.reason["strategy"] == "second_opinion"
    html = review_page(client, world)
    assert 'data-card-kind="review"' in html and "FLAG-1" in html
    assert "An analyst flagged the given label ok as wrong." in html


def test_the_analyst_card_keeps_the_given_label_with_y(client, world) -> None:
    project, ok = world["project"], world["classes"][0]
    case = CaseFactory(project=project, given_label=ok, external_id="KEEP-1")
    QueueItemFactory(case=case, kind=QueueKind.POOL)
    alice = world["analysts"][0]
    client.force_login(alice)
    html = client.get(url("queue", project)).content.decode()
    assert re.search(rf'name="label" value="{ok.pk}" data-key="y" aria-keyshortcuts="y"', html)
    assert "<td>Keep the given label</td>" in html
    client.post(url("queue_submit", project), {"ticket": ticket_of(html), "label": ok.pk}, **HX)
    assert Annotation.objects.get(annotator=alice, case=case).label == ok
    project.blind_mode = True
    project.save()
    case = CaseFactory(project=project, given_label=ok)
    QueueItemFactory(case=case, kind=QueueKind.POOL)
    html = client.get(url("queue", project)).content.decode()
    assert 'data-key="y"' not in card_part(html)  # blind: the given label is not shown


def test_an_excluded_neighbour_is_marked_on_the_analyst_card(client, world) -> None:
    project = world["project"]
    item = QueueItemFactory(
        case=CaseFactory(project=project, given_label=world["classes"][0]),
        kind=QueueKind.POOL,
        similar_cases=world["item"].similar_cases,
    )
    client.force_login(world["analysts"][0])
    card = card_part(client.get(url("queue", project)).content.decode())
    assert item.case.external_id in card
    assert card.count('class="excluded"') == 1 and "status-excluded" in card


def test_an_adjudication_card_shows_the_consensus_and_decides_as_adjudicated(client, world) -> None:
    """An adjudication item of the champion's facts: the consensus with its posterior and label
    count, the model's (not the detector's) suggestion, the analysts' answers; the decision
    posted from it is an adjudication, which outranks the consensus."""
    from django.utils import timezone

    from labeling.models import CaseConsensus

    project, case, (_ok, gambling, skill) = world["project"], world["case"], world["classes"]
    QueueItem.objects.filter(pk=world["item"].pk).update(
        kind=QueueKind.ADJUDICATION, model_version_id=77
    )
    CaseConsensus.objects.create(
        project=project,
        case=case,
        label=gambling,
        posterior=0.61,
        analyst_labels=2,
        computed_at=timezone.now(),
    )
    ResolvedLabel.objects.update_or_create(
        case=case,
        defaults={"label": gambling, "source": ResolutionSource.CONSENSUS, "confidence": 0.61},
    )
    html = review_page(client, world)
    card = card_part(html)
    assert 'data-card-kind="review"' in card and 'class="item-kind">Adjudication<' in card
    assert re.search(
        r'id="consensus">Consensus of the analysts.*?<strong[^>]*>Gambling', card, re.S
    )
    assert 'class="proba">0.61<' in card and "over 2 analyst labels" in card
    assert re.search(r"The model suggests <strong[^>]*>Gambling</strong>", card)
    assert "out-of-fold" not in card
    assert "alice" in card and "They run a casino." in card
    post = {"ticket": ticket_of(html), "label": skill.pk}
    body = client.post(url("queue_submit", project), post, **HX).content.decode()
    assert 'role="alert"' not in body
    resolved = ResolvedLabel.objects.get(case=case)
    assert (resolved.label, resolved.source) == (skill, ResolutionSource.ADJUDICATED)
    assert Annotation.objects.get(annotator=world["reviewer"]).source == (
        AnnotationSource.ADJUDICATION
    )


def _label_issue(world, **fields):
    from active_learning.models import LabelIssue

    (ok, gambling, _skill) = world["classes"]
    values = {
        "given_label": ok,
        "suggested_label": gambling,
        "suggested_p": 0.83,
        "score": 0.912,
        "self_confidence": 0.088,
        "in_prune_set": True,
        "views": ["embedding model"],
        **fields,
    }
    return LabelIssue.objects.create(project=world["project"], case=world["case"], **values)


def test_the_review_card_shows_the_label_issue_score_and_the_views_that_flag_it(
    client, world
) -> None:
    """The detector's score and the views that agree on the suggestion, read from the label
    issue; the item's suggestion (the same as the detector's) is said once, with its
    probability."""
    _label_issue(world)
    card = card_part(review_page(client, world))
    assert re.search(r"detector suggests <strong[^>]*>Gambling</strong>", card)
    assert 'class="proba">0.83<' in card
    assert 'id="issue-score">0.91<' in card
    assert '<span id="issue-views">embedding model</span>' in card
    assert card.count("Gambling</strong>") == 1


def test_an_adjudication_card_on_a_flagged_case_shows_the_detectors_suggestion(
    client, world
) -> None:
    """An item that carries the model's facts, not the detector's, still shows what the
    detector suggests for a flagged case, with its out-of-fold probability."""
    QueueItem.objects.filter(pk=world["item"].pk).update(
        kind=QueueKind.ADJUDICATION, model_version_id=77, suggestion=None, suggestion_p=None
    )
    _label_issue(world, suggested_p=0.64)
    card = card_part(review_page(client, world))
    assert re.search(
        r'id="label-issue">Label-issue score <span class="proba" id="issue-score">0.91</span>, '
        r'flagged by <span id="issue-views">embedding model</span>: the detector suggests '
        r"<strong[^>]*>Gambling</strong> with an out-of-fold probability of "
        r'<span class="proba">0.64</span>',
        card,
    )


def test_an_evaluation_tie_card_shows_no_model_or_detector_view(client, world) -> None:
    """An adjudication of an evaluation case without a suggestion (an evaluation draw's tie):
    its decision is the evaluation label, so neither the detector's view nor a suggestion is
    shown, and there is no suggestion to accept; the pool case's card still shows them."""
    from labeling.models import Case, Split

    Case.objects.filter(pk=world["case"].pk).update(split=Split.EVAL)
    QueueItem.objects.filter(pk=world["item"].pk).update(
        kind=QueueKind.ADJUDICATION, suggestion=None, suggestion_p=None, group=[]
    )
    _label_issue(world, suggested_p=0.64)
    card = card_part(review_page(client, world))
    assert 'class="item-kind">Adjudication<' in card
    assert "An evaluation case" in card and 'id="label-issue"' not in card
    assert "suggests" not in card and 'value="accept"' not in card
    assert "alice" in card  # the analysts' answers are what the decision rests on
