"""The queue page: one case at a time, htmx swaps, signed tickets, blind mode, reasons in words."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from active_learning.models import ModelStatus, ModelVersion
from labeling.contracts import PROBE_DETAIL, PickReason
from labeling.models import (
    Annotation,
    AnnotationSource,
    LabelClass,
    ProjectRole,
    QueueItem,
    QueueStatus,
    ResolutionSource,
    ResolvedLabel,
    Split,
    Tier,
)
from labeling.selectors_queue import NEUTRAL_REASON, reason_sentence
from tests.factories import CaseFactory, ProjectFactory, QueueItemFactory, UserFactory

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def setup():
    project = ProjectFactory(evaluation_fraction=0.0)
    classes = [
        LabelClass.objects.create(project=project, name="ok", shortcut_key="1", order=0),
        LabelClass.objects.create(
            project=project,
            name="gambling",
            display_name="Gambling",
            tier=Tier.PROHIBITED,
            shortcut_key="2",
            order=1,
        ),
        LabelClass.objects.create(
            project=project,
            name="skill",
            display_name="Skill games",
            tier=Tier.RESTRICTED,
            shortcut_key="3",
            order=2,
        ),
    ]
    analyst = UserFactory()
    project.memberships.create(user=analyst, role=ProjectRole.ANALYST)
    for i in range(5):
        case = CaseFactory(
            project=project,
            given_label=classes[0],
            metadata={"business_name": f"Shop {i}", "mcc": 5999},
        )
        QueueItemFactory(case=case, priority=10 - i)
    return project, classes, analyst


def url(name, project, *args):
    return reverse(f"labeling:{name}", args=[project.slug, *args])


def ticket_of(html: str) -> str:
    return re.search(r'name="ticket" value="([^"]+)"', html).group(1)


def test_page_shows_one_case_with_keys(client, setup) -> None:
    """The full page shows the first case, its metadata and one button per class with its key."""
    project, classes, analyst = setup
    client.force_login(analyst)
    html = client.get(url("queue", project)).content.decode()
    assert "<html" in html and "Shop 0" in html and '<dt dir="auto">mcc</dt>' in html
    for c in classes:
        assert f'data-key="{c.shortcut_key}"' in html
    assert html.count('name="ticket"') == 1
    assert QueueItem.objects.filter(assigned_to=analyst, status=QueueStatus.CLAIMED).count() == 2


def test_the_card_shows_where_the_given_label_came_from(client, setup) -> None:
    """Next to the given label, small and muted: the source, escaped, in its own direction."""
    project, classes, analyst = setup
    QueueItem.objects.all().delete()
    case = CaseFactory(
        project=project, given_label=classes[1], given_label_source="<script>alert(1)</script>"
    )
    QueueItemFactory(case=case)
    client.force_login(analyst)
    card = client.get(url("queue", project)).content.decode()
    card = card[card.index('id="queue-card"') : card.index('id="guidelines"')]
    assert re.search(
        r'id="given-label">Given label: <span[^>]*>Gambling</span> <span class="muted small" '
        r'id="label-source">from <span dir="auto">&lt;script&gt;alert\(1\)&lt;/script&gt;</span>',
        card,
    )
    assert "<script>alert(1)" not in card


def test_htmx_gets_the_partial(client, setup) -> None:
    project, _, analyst = setup
    client.force_login(analyst)
    html = client.get(url("queue", project), **HX).content.decode()
    assert "<html" not in html and 'id="queue-card"' in html


def test_submit_records_shown_and_swaps_in_the_next_case(client, setup) -> None:
    """A submit writes one annotation with what was shown and returns the next case's card."""
    project, classes, analyst = setup
    client.force_login(analyst)
    html = client.get(url("queue", project)).content.decode()
    ticket = ticket_of(html)
    data = {
        "ticket": ticket,
        "label": classes[1].pk,
        "comment": "  sure ",
        "duration_ms": "999999999",
    }
    response = client.post(url("queue_submit", project), data, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and "Shop 1" in body
    annotation = Annotation.objects.get()
    assert annotation.label == classes[1] and annotation.comment == "sure"
    assert (
        annotation.shown["given_label_id"] == classes[0].pk and annotation.shown["blind"] is False
    )
    assert annotation.duration_ms is not None and annotation.duration_ms < 60_000  # clamped
    # A double submit of the same card is a replay: still one annotation.
    client.post(url("queue_submit", project), data, **HX)
    assert Annotation.objects.count() == 1


def test_the_card_counts_todays_labels_and_what_is_left(client, setup) -> None:
    """The swapped card carries the analyst's progress: answers given today (a skip is not one)
    and the open items left; the business name is its heading only, not a metadata row."""
    project, classes, analyst = setup
    client.force_login(analyst)
    html = client.get(url("queue", project)).content.decode()
    progress = re.compile(
        r"Labelled today: <strong>(\d+)</strong> · left in the queue: <strong>(\d+)"
    )
    assert progress.search(html).groups() == ("0", "3")  # five items, two held
    assert html.count("Shop 0") == 1 and '<dt dir="auto">business_name</dt>' not in html
    data = {"ticket": ticket_of(html), "label": classes[1].pk}
    body = client.post(url("queue_submit", project), data, **HX).content.decode()
    left = QueueItem.objects.filter(project=project, status=QueueStatus.OPEN).count()
    assert progress.search(body).groups() == ("1", str(left))  # a low queue is topped up
    body = client.post(url("queue_skip", project), {"ticket": ticket_of(body)}, **HX)
    left = QueueItem.objects.filter(project=project, status=QueueStatus.OPEN).count()
    assert progress.search(body.content.decode()).groups() == ("1", str(left))


def test_the_progress_line_counts_open_items_only_up_to_a_cap(client, setup, monkeypatch) -> None:
    """A long queue is not counted to the end on every card: past the cap it says "N+"."""
    from labeling import selectors_queue

    project, _, analyst = setup
    monkeypatch.setattr(selectors_queue, "LEFT_COUNTED", 2)
    client.force_login(analyst)
    html = client.get(url("queue", project)).content.decode()
    assert "left in the queue: <strong>2+</strong>" in html  # three open items


def test_a_label_of_a_text_changed_after_render_is_stored_stale(client, setup) -> None:
    """The ticket carries the rendered text's hash; a label of an older text is kept but stale."""
    from labeling.models import Case

    project, classes, analyst = setup
    client.force_login(analyst)
    ticket = ticket_of(client.get(url("queue", project)).content.decode())
    item = QueueItem.objects.filter(assigned_to=analyst).order_by("-priority").first()
    rendered = item.case.content_hash
    Case.objects.filter(pk=item.case_id).update(text="Changed", content_hash="e" * 64)
    client.post(url("queue_submit", project), {"ticket": ticket, "label": classes[1].pk}, **HX)
    annotation = Annotation.objects.get()
    assert annotation.case_id == item.case_id and annotation.content_hash == rendered


def test_without_js_a_submit_redirects_to_the_queue(client, setup) -> None:
    project, classes, analyst = setup
    client.force_login(analyst)
    ticket = ticket_of(client.get(url("queue", project)).content.decode())
    response = client.post(url("queue_submit", project), {"ticket": ticket, "label": classes[0].pk})
    assert response.status_code == 302 and response["Location"] == url("queue", project)
    assert Annotation.objects.count() == 1


def test_forged_or_foreign_tickets_write_nothing(client, setup) -> None:
    """A tampered ticket, or another analyst's, is refused with a message, never a 500."""
    project, classes, analyst = setup
    client.force_login(analyst)
    ticket = ticket_of(client.get(url("queue", project)).content.decode())
    forged = ticket[:-3] + ("AAA" if not ticket.endswith("AAA") else "BBB")
    body = client.post(
        url("queue_submit", project), {"ticket": forged, "label": classes[0].pk}, **HX
    )
    assert "shown in another session" in body.content.decode()
    other = UserFactory()
    project.memberships.create(user=other, role=ProjectRole.ANALYST)
    client.force_login(other)
    response = client.post(
        url("queue_submit", project), {"ticket": ticket, "label": classes[0].pk}, **HX
    )
    assert response.status_code == 200 and not Annotation.objects.exists()


def test_label_of_another_project_is_an_error_message(client, setup) -> None:
    project, _, analyst = setup
    foreign = LabelClass.objects.create(project=ProjectFactory(), name="x", shortcut_key="1")
    client.force_login(analyst)
    ticket = ticket_of(client.get(url("queue", project)).content.decode())
    response = client.post(
        url("queue_submit", project), {"ticket": ticket, "label": foreign.pk}, **HX
    )
    assert (
        response.status_code == 200
        and "is not a class of this project" in response.content.decode()
    )
    assert not Annotation.objects.exists()


def test_flags_only_skip_and_undo(client, setup) -> None:
    """Flags without a label, a skip and an undo, each answered with the next card."""
    project, _, analyst = setup
    client.force_login(analyst)
    ticket = ticket_of(client.get(url("queue", project)).content.decode())
    html = client.post(
        url("queue_submit", project), {"ticket": ticket, "label": "", "noise_flag": "on"}, **HX
    ).content.decode()
    first = Annotation.objects.get()
    assert first.label is None and first.noise_flag
    html = client.post(
        url("queue_skip", project), {"ticket": ticket_of(html)}, **HX
    ).content.decode()
    assert Annotation.objects.filter(skipped=True).count() == 1
    action = re.search(r'name="action_id" value="(\d+)"', html).group(1)
    html = client.post(url("queue_undo", project), {"action_id": action}, **HX).content.decode()
    assert Annotation.objects.filter(skipped=True, superseded_at__isnull=False).count() == 1
    assert "Shop 1" in html  # the skipped case is back in front


def test_nothing_given_is_explained(client, setup) -> None:
    project, _, analyst = setup
    client.force_login(analyst)
    ticket = ticket_of(client.get(url("queue", project)).content.decode())
    html = client.post(
        url("queue_submit", project), {"ticket": ticket, "label": ""}, **HX
    ).content.decode()
    assert "Choose a label" in html and not Annotation.objects.exists()


def test_ping_renews_the_leases(client, setup) -> None:
    project, _, analyst = setup
    client.force_login(analyst)
    client.get(url("queue", project))
    QueueItem.objects.filter(assigned_to=analyst).update(lease_expires_at=timezone.now())
    response = client.post(url("queue_ping", project))
    assert response.status_code == 204 and response["X-Renewed"] == "2"
    soon = timezone.now() + timedelta(seconds=60)
    assert all(i.lease_expires_at > soon for i in QueueItem.objects.filter(assigned_to=analyst))


def test_empty_queue_polls_calmly(client) -> None:
    project = ProjectFactory()
    analyst = UserFactory()
    project.memberships.create(user=analyst, role=ProjectRole.ANALYST)
    client.force_login(analyst)
    html = client.get(url("queue", project)).content.decode()
    assert "Nothing to label right now" in html and 'hx-trigger="every 10s"' in html


def _champion(project, classes):
    return ModelVersion.objects.create(
        project=project, number=1, status=ModelStatus.CHAMPION, metrics={"macro_f1": 0.81}
    )


def _torn(classes) -> dict:
    """A stored margin reason between classes 1 and 2, as the pipeline writes it."""
    return PickReason(
        strategy="margin",
        sentence="The model is torn between Gambling (0.46) and Skill games (0.42).",
        sentence_blind="The model is torn between two classes.",
        score=0.04,
        class_ids=(classes[1].pk, classes[2].pk),
        probas=(0.46, 0.42),
    ).to_json()


def test_suggestion_alternatives_and_reason(client, setup) -> None:
    """The card shows the suggestion with its probability, alternatives and the reason in words."""
    project, classes, analyst = setup
    version = _champion(project, classes)
    item = QueueItem.objects.order_by("-priority").first()
    item.reason = _torn(classes)
    item.model_version_id = version.pk
    item.suggestion, item.suggestion_p = classes[1], 0.46
    item.alternatives = [[classes[2].pk, 0.42], [classes[0].pk, 0.12]]
    item.similar_cases = [
        {
            "case_id": QueueItem.objects.last().case_id,
            "label_id": classes[2].pk,
            "similarity": 0.91,
            "from_analyst": True,
        }
    ]
    item.save()
    client.force_login(analyst)
    html = client.get(url("queue", project)).content.decode()
    assert "The model is torn between Gambling (0.46) and Skill games (0.42)." in html
    assert 'id="suggestion"' in html and "0.46" in html and 'id="alternatives"' in html
    assert "data-accept" in html and "0.91" in html and "similar-label" in html


def test_the_card_reads_the_stored_reason() -> None:
    """The sentence is the one the pipeline stored; items from before sentences existed, or
    without a reason, read as a random pick."""
    torn = {"strategy": "margin", "sentence": "Torn (0.46).", "sentence_blind": "Torn."}
    assert reason_sentence(torn, blind=False) == "Torn (0.46)."
    assert reason_sentence(torn, blind=True) == "Torn."
    for neutral in ({}, {"strategy": "random"}, {"strategy": "margin", "class_ids": [1]}, None):
        assert reason_sentence(neutral, blind=False) == NEUTRAL_REASON


def _skeleton(html: str) -> list[str]:
    """The card's markup with text, values and ids blanked: what could tell two items apart."""
    card = html[html.index('id="queue-card"') :]
    card = re.sub(r'<form class="undo".*?</form>', "", card, flags=re.S)  # differs by history
    tags = re.findall(r"<[a-zA-Z][^>]*>", card)
    return [re.sub(r'="[^"]*"', '=""', t) for t in tags]


def test_evaluation_items_look_like_probe_picks(client, setup) -> None:
    """An evaluation item and a pool-probe pick render with identical markup, both blind."""
    project, classes, analyst = setup
    version = _champion(project, classes)
    QueueItem.objects.all().delete()
    cases = []
    for split, reason in (
        (Split.EVAL, {"strategy": "evaluation"}),
        (Split.POOL, PickReason(strategy="random", details={PROBE_DETAIL: 0.01}).to_json()),
    ):
        case = CaseFactory(
            project=project,
            split=split,
            given_label=classes[0],
            metadata={"business_name": "X", "mcc": 1},
        )
        QueueItemFactory(
            case=case,
            kind="evaluation" if split == Split.EVAL else "pool",
            reason=reason,
            priority=1,
            model_version_id=version.pk,
            suggestion=classes[1],
            suggestion_p=0.5,
            alternatives=[[classes[2].pk, 0.3]],
        )
        cases.append(case)
    client.force_login(analyst)
    first = client.get(url("queue", project), **HX).content.decode()
    data = {"ticket": ticket_of(first), "label": classes[0].pk}
    second = client.post(url("queue_submit", project), data, **HX).content.decode()
    assert NEUTRAL_REASON in first and NEUTRAL_REASON in second
    assert _skeleton(first) == _skeleton(second)
    for html in (first, second):  # both blind (`unaided`)
        _assert_no_model_view(html[html.index('id="queue-card"') :])


def test_a_probe_pick_is_blind_and_other_picks_are_not(client, setup) -> None:
    """Outside blind mode, a pool-probe pick's card shows neither the champion's suggestion nor
    the given label or the neighbours' labels, and its annotation records it as blind; a random
    pick and a strategy pick after it show them all."""
    project, classes, analyst = setup
    version = _champion(project, classes)
    QueueItem.objects.all().delete()
    neighbour = CaseFactory(project=project, given_label=classes[2])
    probe = PickReason(strategy="random", details={PROBE_DETAIL: 0.01}).to_json()
    reasons = (probe, PickReason(strategy="random").to_json(), _torn(classes))
    for priority, reason in zip((3, 2, 1), reasons, strict=True):
        case = CaseFactory(project=project, given_label=classes[0])
        QueueItemFactory(
            case=case,
            reason=reason,
            priority=priority,
            model_version_id=version.pk,
            suggestion=classes[1],
            suggestion_p=0.46,
            alternatives=[[classes[2].pk, 0.42]],
            similar_cases=[{"case_id": neighbour.pk, "similarity": 0.9}],
        )
    client.force_login(analyst)
    html = client.get(url("queue", project), **HX).content.decode()
    _assert_no_model_view(html[html.index('id="queue-card"') :])
    assert 'id="unaided"' in html
    for _ in reasons[1:]:
        data = {"ticket": ticket_of(html), "label": classes[2].pk}
        html = client.post(url("queue_submit", project), data, **HX).content.decode()
        for present in ('id="suggestion"', 'id="given-label"', "data-accept", "0.46", "noise-flag"):
            assert present in html
        assert "similar-label" in html and 'id="unaided"' not in html
    shown = Annotation.objects.order_by("id").first().shown
    assert shown["blind"] is True and shown["suggestion_id"] is None
    assert shown["given_label_id"] is None and shown["model_version_id"] is None
    assert Annotation.objects.order_by("id").last().shown["blind"] is False


def test_a_gold_card_looks_like_a_probe_pick(client, setup) -> None:
    """A gold item (a decided case served back, with a random pick's reason and the champion's
    facts, as the pipeline writes it) renders blind with the markup of a pool-probe pick carrying
    the same facts, and nothing on the page says gold."""
    project, classes, analyst = setup
    project.gold_fraction = 1.0  # the first claim is the gold item, the next a pool item
    project.save()
    version = _champion(project, classes)
    QueueItem.objects.all().delete()
    reviewer = UserFactory()
    for kind in ("gold", "pool"):
        case = CaseFactory(
            project=project, given_label=classes[0], metadata={"business_name": "X", "mcc": 1}
        )
        if kind == "gold":
            Annotation.objects.create(
                case=case,
                annotator=reviewer,
                label=classes[1],
                source=AnnotationSource.REVIEW,
                submission_id=uuid.uuid4(),
                content_hash=case.content_hash,
            )
            ResolvedLabel.objects.create(
                case=case, label=classes[1], source=ResolutionSource.REVIEW
            )
        QueueItemFactory(
            case=case,
            kind=kind,
            reason=PickReason(
                strategy="random", details={} if kind == "gold" else {PROBE_DETAIL: 0.01}
            ).to_json(),
            priority=1,
            model_version_id=version.pk,
            suggestion=classes[1],
            suggestion_p=0.46,
            alternatives=[[classes[2].pk, 0.42]],
            similar_cases=[],
        )
    client.force_login(analyst)
    first = client.get(url("queue", project), **HX).content.decode()
    gold = QueueItem.objects.get(kind="gold")
    gold.refresh_from_db()
    assert gold.status == QueueStatus.CLAIMED and gold.assigned_to == analyst
    data = {"ticket": ticket_of(first), "label": classes[1].pk}
    second = client.post(url("queue_submit", project), data, **HX).content.decode()
    assert QueueItem.objects.get(pk=gold.pk).status == QueueStatus.DONE
    assert NEUTRAL_REASON in first and NEUTRAL_REASON in second
    assert _skeleton(first) == _skeleton(second)
    for html in (first, second):
        assert "gold" not in html.lower()
        _assert_no_model_view(html[html.index('id="queue-card"') :])


def _assert_no_model_view(card: str) -> None:
    """No suggestion, probability, alternatives, given label or its source, or similar labels."""
    for absent in (
        'id="suggestion"',
        'id="alternatives"',
        'id="given-label"',
        'id="label-source"',
        "data-accept",
        "similar-label",
        "0.46",
        "noise-flag",
    ):
        assert absent not in card


def test_blind_mode_leaves_model_facts_out_of_the_page(client, setup) -> None:
    """Blind mode: no suggestion, probabilities, given label or its source, class names in reasons,
    or similar labels."""
    project, classes, analyst = setup
    project.blind_mode = True
    project.save()
    version = _champion(project, classes)
    item = QueueItem.objects.order_by("-priority").first()
    item.reason = _torn(classes)
    item.model_version_id = version.pk
    item.suggestion, item.suggestion_p = classes[1], 0.46
    item.alternatives = [[classes[2].pk, 0.42]]
    item.similar_cases = [
        {"case_id": QueueItem.objects.last().case_id, "label_id": classes[2].pk, "similarity": 0.9}
    ]
    item.save()
    item.case.given_label_source = "vendor_feed"
    item.case.save()
    client.force_login(analyst)
    html = client.get(url("queue", project)).content.decode()
    card = html[html.index('id="queue-card"') : html.index('id="guidelines"')]
    _assert_no_model_view(card)
    assert "vendor_feed" not in card
    assert "The model is torn between two classes." in card
    client.post(
        url("queue_submit", project), {"ticket": ticket_of(html), "label": classes[0].pk}, **HX
    )
    shown = Annotation.objects.get().shown
    assert (
        shown["blind"] is True
        and shown["suggestion_id"] is None
        and shown["given_label_id"] is None
    )


HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)><a href="javascript:alert(3)">x</a>\u202egnp.exe'


def test_hostile_text_is_escaped(client, setup) -> None:
    project, classes, analyst = setup
    QueueItem.objects.all().delete()
    case = CaseFactory(
        project=project,
        text=HOSTILE + "x" * 100_000,
        metadata={HOSTILE: HOSTILE, "business_name": HOSTILE},
    )
    QueueItemFactory(case=case)
    LabelClass.objects.filter(pk=classes[2].pk).update(
        display_name=HOSTILE, guideline=HOSTILE, examples=[HOSTILE]
    )
    client.force_login(analyst)
    html = client.get(url("queue", project)).content.decode()
    assert (
        "<script>alert" not in html and "<img src=x" not in html and 'href="javascript:' not in html
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_undo_line_names_the_last_answer(client, setup) -> None:
    """After an answer the undo button says what it would undo: the case and the label."""
    project, classes, analyst = setup
    client.force_login(analyst)
    html = client.get(url("queue", project)).content.decode()
    assert re.search(r'<button type="submit" data-key="u" aria-keyshortcuts="u" disabled>', html)
    data = {"ticket": ticket_of(html), "label": classes[1].pk}
    html = client.post(url("queue_submit", project), data, **HX).content.decode()
    first = Annotation.objects.get()
    assert re.search(
        rf'last: label of <span dir="auto">{first.case.external_id}</span> as '
        r'<span dir="auto">Gambling</span>',
        html,
    )


def _card(client, project) -> str:
    return client.get(url("queue", project), **HX).content.decode()


def test_classes_come_from_a_cache_that_never_outlives_a_change(
    client, admin_client, setup
) -> None:
    """The card's classes are cached per process, and the next card after any change shows
    it: an edit in the admin, an update, a new class, a deleted one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    project, classes, analyst = setup
    client.force_login(analyst)
    assert "Skill games" in _card(client, project)
    with CaptureQueriesContext(connection) as queries:
        assert "Skill games" in _card(client, project)
    assert not [q for q in queries if 'FROM "labeling_labelclass"' in q["sql"]]  # cached

    change = reverse("admin:labeling_labelclass_change", args=[classes[1].pk])
    form = {"project": project.pk, "name": "gambling", "tier": Tier.PROHIBITED, "order": 1}
    form |= {"display_name": "Betting & casinos", "shortcut_key": "2", "examples": "[]"}
    assert admin_client.post(change, form).status_code == 302
    html = _card(client, project)
    assert "Betting &amp; casinos" in html and ">Gambling<" not in html

    LabelClass.objects.filter(pk=classes[2].pk).update(display_name="Games of skill")
    html = _card(client, project)
    assert "Games of skill" in html and "Skill games" not in html

    LabelClass.objects.bulk_create([LabelClass(project=project, name="crypto", shortcut_key="4")])
    assert 'data-key="4"' in _card(client, project)

    classes[2].delete()
    html = _card(client, project)
    assert "Games of skill" not in html and 'data-key="3"' not in html


def test_submit_and_next_runs_a_fixed_few_statements(client, setup) -> None:
    """One answer and the next card: session and user, the project with the role, the ticket's
    item, the label's writes (the case's last change for the search among them), the claim and
    the card, in plain statements, however many classes and neighbours the card shows (no query
    per row)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    project, classes, analyst = setup
    for i in range(6):
        QueueItemFactory(case=CaseFactory(project=project, given_label=classes[0]), priority=-i)
    neighbours = [CaseFactory(project=project, given_label=classes[1]) for _ in range(10)]
    for c in neighbours[:5]:
        ResolvedLabel.objects.create(case=c, label=classes[2], source=ResolutionSource.ANNOTATION)

    def neighbours_shown(n: int) -> None:
        rows = [{"case_id": c.pk, "similarity": 0.9} for c in neighbours[:n]]
        QueueItem.objects.filter(project=project).update(similar_cases=rows)

    def answer(html: str) -> tuple[str, int]:
        data = {"ticket": ticket_of(html), "label": classes[0].pk}
        with CaptureQueriesContext(connection) as queries:
            html = client.post(url("queue_submit", project), data, **HX).content.decode()
        assert "Skill games" in html  # a neighbour's resolved label, read with the neighbours
        sqls = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
        # The claim tries the kinds of its policy in a seeded random order until one has an
        # item: an attempt finding none is one more UPDATE, counted here as the same claim.
        claims = [
            q
            for q in sqls
            if q.lstrip().startswith("UPDATE labeling_queueitem SET status = 'claimed'")
        ]
        return html, len(sqls) - max(0, len(claims) - 1)

    neighbours_shown(1)
    client.force_login(analyst)
    html, _ = answer(client.get(url("queue", project)).content.decode())
    html, few = answer(html)
    neighbours_shown(10)
    for k in range(4, 10):
        LabelClass.objects.create(project=project, name=f"extra{k}", shortcut_key=str(k))
    html, _ = answer(html)  # the changed classes are loaded once
    html, many = answer(html)
    # A row read per class or neighbour would add five or more.
    assert few <= 20 and many <= few


def test_the_card_an_undo_brings_says_what_was_undone(client, setup) -> None:
    """After an undo the card says what it took back (case and label) and that the case is
    back, and the day's count no longer includes it; the next answer's card says nothing of it.
    Without htmx the page's messages say it."""
    project, classes, analyst = setup
    client.force_login(analyst)
    html = client.get(url("queue", project)).content.decode()
    for _ in range(2):
        data = {"ticket": ticket_of(html), "label": classes[1].pk}
        html = client.post(url("queue_submit", project), data, **HX).content.decode()
    assert "Labelled today: <strong>2</strong>" in html and 'id="undone-notice"' not in html
    last = Annotation.objects.latest("id").case.external_id
    action = re.search(r'name="action_id" value="(\d+)"', html).group(1)
    html = client.post(url("queue_undo", project), {"action_id": action}, **HX).content.decode()
    assert re.search(
        rf'<p class="notice info" role="status" id="undone-notice">Undone: label of '
        rf'<span dir="auto">{last}</span> as <span dir="auto">Gambling</span>\. '
        r"The case is back: answer it again\.</p>",
        html,
    )
    assert f'<span class="muted case-id" dir="auto">{last}</span>' in html
    assert "Labelled today: <strong>1</strong>" in html

    data = {"ticket": ticket_of(html), "label": classes[0].pk}
    html = client.post(url("queue_submit", project), data, **HX).content.decode()
    assert 'id="undone-notice"' not in html and "Labelled today: <strong>2</strong>" in html
    response = client.post(url("queue_undo", project), follow=True)
    html = response.content.decode()
    assert '<li class="info">Undone: your last label.</li>' in html
    assert "Labelled today: <strong>1</strong>" in html
