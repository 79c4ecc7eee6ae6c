"""The queue page in a real browser: keyboard-only labelling, two analysts, blind mode, hostile
text, and the README's screenshot (docs/queue.png)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from active_learning.models import ModelStatus, ModelVersion, Prediction
from active_learning.strategies import pick_reason
from labeling.contracts import PROBE_DETAIL, PickReason
from labeling.models import (
    Annotation,
    Case,
    LabelClass,
    Project,
    ProjectRole,
    QueueItem,
    ResolvedLabel,
    Tier,
)
from labeling.services.queue import queue_fill_random
from tests.e2e.conftest import PASSWORD, log_in
from tests.factories import CaseFactory, ProjectFactory, QueueItemFactory, UserFactory
from tests.pipeline import generated_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(__file__).resolve().parents[2] / "docs"
CARD = "#queue-card"


def member(project, role: str = ProjectRole.ANALYST, name: str | None = None):
    user = UserFactory(username=name) if name else UserFactory()
    user.set_password(PASSWORD)
    user.save()
    project.memberships.create(user=user, role=role)
    return user


def small_project(n: int = 40, name: str | None = None, **settings):
    project = generated_project(n=n, evaluation_fraction=0.1, **settings)
    # The steady state: evaluation items at the evaluation fraction, not the warm-up share, so
    # the first cards are the pool items these tests set up.
    project.evaluation_evidence_short = False
    if name:
        project.name = name
    project.save(update_fields=["name", "evaluation_evidence_short"])
    queue_fill_random(project=project, cases=n, seed=1)
    return project


def submission(page) -> str | None:
    return page.eval_on_selector(CARD, "el => el.dataset.submission || null")


def press_and_wait(page, key: str) -> None:
    """Press a key that answers the case and wait until the next case has swapped in."""
    before = submission(page)
    page.keyboard.press(key)
    page.wait_for_function(
        "prev => { const c = document.querySelector('#queue-card');"
        " return c && (c.dataset.submission || null) !== prev; }",
        arg=before,
    )
    # ...and settled: the page moves focus to the new case once htmx has finished with it.
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.id === 'case-title'"
        " && !document.querySelector('.htmx-request')"
        " && document.querySelector('#queue-card[data-shown]')"
    )


def test_keyboard_only_session(live_server, guarded_page) -> None:
    """Log in, label 10 cases by keyboard, undo one, flag one as noise, comment, skip, guideline."""
    page = guarded_page
    project = small_project()
    # Pool draws only: an evaluation item's card is blind, with no given label to flag.
    Project.objects.filter(pk=project.pk).update(evaluation_fraction=0.0)
    analyst = member(project)
    log_in(page, live_server.url, analyst.username)
    page.goto(f"{live_server.url}/projects/{project.slug}/queue/")
    page.wait_for_selector("#case-title")
    assert page.evaluate("document.activeElement.id") == "case-title"
    seen = []
    for i in range(10):
        seen.append(page.inner_text(".case-id"))
        if i == 3:
            page.keyboard.press("n")
            assert page.is_checked("#noise-flag")
        if i == 5:
            page.keyboard.press("c")
            page.keyboard.type("s1u 2 cases like this")  # shortcuts must not fire while typing
            assert submission(page) is not None
            page.keyboard.press("Escape")
            assert page.evaluate("document.activeElement.id") == "case-title"
        press_and_wait(page, "1" if i % 2 == 0 else "2")
    press_and_wait(page, "u")  # the 10th label is undone and its case is back in front
    assert page.inner_text(".case-id") == seen[-1]
    press_and_wait(page, "s")
    page.keyboard.press("g")
    assert page.eval_on_selector("#guidelines", "el => el.open")
    assert page.is_visible("#guidelines .guideline")
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("Escape")
    assert page.is_hidden("#help")

    mine = Annotation.objects.filter(annotator=analyst)
    current = mine.filter(superseded_at__isnull=True)
    assert current.filter(skipped=False).count() == 9
    assert current.filter(skipped=True).count() == 1
    assert mine.filter(superseded_at__isnull=False).count() == 1
    assert current.filter(noise_flag=True).count() == 1
    assert current.get(comment="s1u 2 cases like this").label.shortcut_key == "2"
    labels = current.filter(skipped=False)
    assert all(a.duration_ms is not None and a.shown.get("blind") is False for a in labels)
    assert {a.case.external_id for a in labels} == set(seen[:9])


def _today(page) -> str:
    return page.inner_text("#progress strong >> nth=0")


def _hold(page, url: str, key: str):
    """Press `key` and return the request it sends to `url`, held unanswered (the caller
    continues or fulfils it): what happens meanwhile cannot race the answer."""
    held: list = []
    page.route(url, lambda route: held.append(route))
    page.keyboard.press(key)
    for _ in range(250):  # up to 5 s
        if held:
            return held[0]
        page.wait_for_timeout(20)
    raise AssertionError(f"pressing {key} sent no request to {url}")


def test_u_pressed_while_a_label_is_on_its_way_undoes_it_and_says_so(
    live_server, guarded_page
) -> None:
    """u pressed at once after a label key (its answer still on its way, the next card not yet
    shown) is not dropped: once the label is recorded it is undone, its case is back on the card
    with a notice saying so, and the day's count goes down. A later u undoes the label before."""
    page = guarded_page
    project = small_project()
    analyst = member(project)
    log_in(page, live_server.url, analyst.username)
    page.goto(f"{live_server.url}/projects/{project.slug}/queue/")
    page.wait_for_selector("#queue-card[data-shown]")
    posts = _document_posts(page)
    seen = []
    for _ in range(2):
        seen.append(page.inner_text(".case-id"))
        press_and_wait(page, "1")
    assert _today(page) == "2" and page.query_selector("#undone-notice") is None
    seen.append(page.inner_text(".case-id"))
    submit = f"**/projects/{project.slug}/queue/submit/"
    held = _hold(page, submit, "1")
    page.keyboard.press("u")  # the answer is held: its next card cannot have come back yet
    held.continue_()
    page.unroute(submit)
    page.wait_for_selector("#undone-notice", timeout=5000)
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request')"
        " && document.querySelector('#queue-card[data-shown]')"
    )
    assert page.inner_text(".case-id") == seen[2]
    notice = page.inner_text("#undone-notice")
    assert notice.startswith(f"Undone: label of {seen[2]} as ") and "The case is back" in notice
    assert page.is_visible("#undone-notice") and _today(page) == "2"

    page.wait_for_timeout(1500)  # a later u, on a card long settled
    press_and_wait(page, "u")
    assert page.inner_text(".case-id") == seen[1] and _today(page) == "1"
    assert page.inner_text("#undone-notice").startswith(f"Undone: label of {seen[1]} as ")
    press_and_wait(page, "1")  # the next answer's card no longer says it
    assert page.query_selector("#undone-notice") is None and _today(page) == "2"

    current = Annotation.objects.filter(annotator=analyst, superseded_at__isnull=True)
    assert sorted(a.case.external_id for a in current) == sorted(seen[:2])
    assert Annotation.objects.filter(annotator=analyst, superseded_at__isnull=False).count() == 2
    assert posts == []


def test_two_analysts_never_see_the_same_case(live_server, browser, guard) -> None:
    """Two analysts in two browser contexts label side by side and never get the same case."""
    project = small_project(noise_aware_overlap=False)  # one label wanted per case
    users = [member(project), member(project)]
    contexts = [browser.new_context(viewport={"width": 1280, "height": 800}) for _ in users]
    pages = [guard.watch(c.new_page()) for c in contexts]
    seen: list[set[str]] = [set(), set()]
    try:
        for page, user in zip(pages, users, strict=True):
            log_in(page, live_server.url, user.username)
            page.goto(f"{live_server.url}/projects/{project.slug}/queue/")
        for _ in range(6):
            for k, page in enumerate(pages):
                seen[k].add(page.inner_text(".case-id"))
                press_and_wait(page, "1")
        guard.check(*pages)
    finally:
        for c in contexts:
            c.close()
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    held = QueueItem.objects.filter(assigned_to__isnull=False).values_list("case_id", "assigned_to")
    by_case: dict[int, set[int]] = {}
    for case_id, user_id in held:
        by_case.setdefault(case_id, set()).add(user_id)
    assert all(len(v) == 1 for v in by_case.values())


def _champion_card(project, *, similar: int = 5) -> QueueItem:
    """A champion's facts and a margin reason on the first queued case, as the pipeline stores
    them (the sentence made by the strategy registry)."""
    classes = {c.name: c for c in LabelClass.objects.filter(project=project)}
    gambling, skill, retail = classes["gambling"], classes["skill_games"], classes["general_retail"]
    version = ModelVersion.objects.create(
        project=project, number=3, status=ModelStatus.CHAMPION, metrics={"macro_f1": 0.874}
    )
    item = QueueItem.objects.filter(project=project).order_by("-priority", "id").first()
    labelled = list(Case.objects.filter(project=project).exclude(pk=item.case_id)[:similar])
    for case in labelled:
        ResolvedLabel.objects.create(case=case, label=case.given_label, source="annotation")
    raw = {"strategy": "margin", "score": 0.04, "rank": 0, "probas": [0.46, 0.42]}
    names = {c.pk: str(c) for c in classes.values()}
    item.reason = pick_reason(
        {**raw, "class_ids": [gambling.pk, skill.pk]}, class_ids=[], names=names
    ).to_json()
    item.model_version_id = version.pk
    item.suggestion, item.suggestion_p = gambling, 0.46
    item.alternatives = [[skill.pk, 0.42], [retail.pk, 0.05]]
    item.priority = 1000
    item.similar_cases = [
        {
            "case_id": c.pk,
            "label_id": c.given_label_id,
            "similarity": round(0.93 - 0.04 * i, 2),
            "from_analyst": True,
        }
        for i, c in enumerate(labelled)
    ]
    item.save()
    Prediction.objects.create(
        case=item.case,
        model_version=version,
        predicted_label=gambling,
        confidence=0.46,
        top_k=[[gambling.pk, 0.46], [skill.pk, 0.42], [retail.pk, 0.05]],
    )
    return item


# What a blind card leaves out of the DOM.
MODEL_VIEW = (
    "#suggestion",
    "#alternatives",
    "#given-label",
    "#label-source",
    "[data-accept]",
    ".similar-label",
    ".proba",
    "#noise-flag",
)


def _open_blind_card(page, live_server, project, item):
    """A new analyst of `project` opens the queue on `item`'s card, which shows nothing of
    `MODEL_VIEW`; returns the analyst."""
    analyst = member(project)
    log_in(page, live_server.url, analyst.username)
    page.goto(f"{live_server.url}/projects/{project.slug}/queue/")
    assert page.inner_text(".case-id") == item.case.external_id
    for selector in MODEL_VIEW:
        assert page.query_selector(selector) is None, selector
    return analyst


def test_blind_mode_leaves_hidden_things_out_of_the_dom(live_server, guarded_page) -> None:
    """Blind mode: suggestion, probabilities, alternatives, given label, class names in the reason
    and similar cases' labels are not in the DOM at all."""
    page = guarded_page
    project = small_project(blind_mode=True)
    # The first claim must be a pool draw (the evaluation draw depends on the analyst's id).
    Project.objects.filter(pk=project.pk).update(evaluation_fraction=0.0)
    analyst = _open_blind_card(page, live_server, project, _champion_card(project))
    assert page.inner_text("#reason") == "The model is torn between two classes."
    assert page.locator(".similar-list li").count() == 5
    card_html = page.inner_html("#queue-card article")
    assert "0.46" not in card_html and "Gambling" not in card_html
    press_and_wait(page, "1")
    assert Annotation.objects.get(annotator=analyst).shown["blind"] is True


def test_a_probe_pick_shows_no_model_view(live_server, guarded_page) -> None:
    """Outside blind mode, a pool-probe pick's card carrying the champion's facts (as evaluation
    and gold items do) leaves them, the given label and the neighbours' labels out of the DOM,
    says so, and its label is stored as given blind; the random pick after it shows them."""
    page = guarded_page
    project = small_project()
    Project.objects.filter(pk=project.pk).update(evaluation_fraction=0.0)
    item = _champion_card(project)
    item.reason = PickReason(strategy="random", details={PROBE_DETAIL: 0.01}).to_json()
    item.save(update_fields=["reason"])
    analyst = _open_blind_card(page, live_server, project, item)
    assert page.is_visible("#unaided") and page.locator(".similar-list li").count() == 5
    assert "0.46" not in page.inner_html("#queue-card article")
    press_and_wait(page, "1")
    shown = Annotation.objects.get(annotator=analyst).shown
    assert shown["blind"] is True and shown["suggestion_id"] is None
    assert shown["given_label_id"] is None
    assert page.is_visible("#given-label") and page.is_visible("#noise-flag")
    assert page.query_selector("#unaided") is None


HOSTILE = (
    '<script>alert("text")</script><img src=x onerror="alert(1)">'
    '<a href="javascript:alert(2)">click</a><svg onload=alert(3)></svg>\u202eexe.gnp '
)


def test_hostile_text_renders_inert(live_server, guarded_page, guard) -> None:
    """Script tags, handlers, javascript: links, RTL overrides and 100,000 characters stay text."""
    page = guarded_page
    project = ProjectFactory(evaluation_fraction=0.0)
    ok = LabelClass.objects.create(
        project=project,
        name="ok",
        shortcut_key="1",
        display_name=HOSTILE,
        guideline=HOSTILE,
        description=HOSTILE,
        examples=[HOSTILE],
    )
    LabelClass.objects.create(project=project, name="bad", shortcut_key="2", tier=Tier.PROHIBITED)
    for i in range(3):
        case = CaseFactory(
            project=project,
            given_label=ok,
            given_label_source=HOSTILE[:64],
            text=HOSTILE + "y" * 100_000,
            metadata={"business_name": HOSTILE, HOSTILE: HOSTILE + "z" * 100_000, "n": i},
        )
        QueueItemFactory(case=case)
    analyst = member(project)
    reviewer = member(project, role=ProjectRole.REVIEWER)
    log_in(page, live_server.url, analyst.username)
    page.goto(f"{live_server.url}/projects/{project.slug}/queue/")
    assert "<script>" in page.inner_text("#case-title")  # shown as text
    assert page.inner_text("#label-source") == "from " + HOSTILE[:64].strip()
    page.keyboard.press("g")
    page.keyboard.press("c")
    page.keyboard.type(HOSTILE)
    page.keyboard.press("Escape")
    press_and_wait(page, "1")
    overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    # The reviewer reads the hostile comment on the case page.
    case = Annotation.objects.get(annotator=analyst).case
    page.context.clear_cookies()
    log_in(page, live_server.url, reviewer.username)
    page.goto(f"{live_server.url}/projects/{project.slug}/cases/{case.external_id}/")
    assert page.locator(".history .comment").first.inner_text().startswith("<script>")
    assert page.inner_text("#label-source") == "from " + HOSTILE[:64].strip()
    page.fill("#review-comment", HOSTILE)
    page.click(".answer .label-btn >> nth=1")
    page.wait_for_selector(".messages")
    assert Annotation.objects.filter(annotator=reviewer, source="review").count() == 1
    page.goto(f"{live_server.url}/projects/{project.slug}/cases/?q=script")
    page.wait_for_selector("#search-results")
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    guard.check(page)


def test_screenshot_and_narrow_layout(live_server, guarded_page, tmp_path) -> None:
    """The README's screenshot at 1280x800 with a suggestion and a reason; readable at 800 px.

    The screenshot goes to a temporary folder; UPDATE_SCREENSHOT=1 writes docs/queue.png.
    """
    page = guarded_page
    project = small_project(slug="merchant-risk", name="Merchant risk")
    # The first claim must be a pool draw (the evaluation draw depends on the analyst's id).
    Project.objects.filter(pk=project.pk).update(evaluation_fraction=0.0)
    _champion_card(project)
    analyst = member(project, name="dana")
    log_in(page, live_server.url, analyst.username)
    page.goto(f"{live_server.url}/projects/{project.slug}/queue/")
    assert "torn between Gambling (0.46) and Skill games (0.42)" in page.inner_text("#reason")
    assert page.is_visible("#suggestion") and page.locator(".similar-label").count() == 5
    page.keyboard.press("g")
    page.mouse.move(0, 0)
    target = DOCS if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path
    target.mkdir(exist_ok=True)
    page.screenshot(path=str(target / "queue.png"))
    assert (target / "queue.png").stat().st_size > 10_000
    page.set_viewport_size({"width": 800, "height": 800})
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 800
    assert page.is_visible(".label-buttons button >> nth=0")


def _document_posts(page) -> list[str]:
    """Records every full-page (non-htmx) POST the page makes from now on."""
    posts: list[str] = []
    page.on(
        "request",
        lambda r: (
            posts.append(r.url) if r.method == "POST" and r.resource_type == "document" else None
        ),
    )
    return posts


def test_holding_a_key_labels_one_case(live_server, guarded_page) -> None:
    """Holding `2` (auto-repeat: 5 keydowns 30 ms apart, repeat=true on all but the first) labels
    exactly the case shown, once, through htmx; the next case is left alone."""
    page = guarded_page
    project = small_project()
    analyst = member(project)
    log_in(page, live_server.url, analyst.username)
    page.goto(f"{live_server.url}/projects/{project.slug}/queue/")
    page.wait_for_selector("#case-title")
    shown = page.inner_text(".case-id")
    posts = _document_posts(page)
    page.evaluate(
        "() => { window.__repeats = [];"
        " document.addEventListener('keydown', e => window.__repeats.push(e.repeat), true); }"
    )
    page.keyboard.down("2")
    for _ in range(4):
        page.wait_for_timeout(30)
        page.keyboard.down("2")  # Playwright marks a second down of a held key as a repeat
    page.keyboard.up("2")
    assert page.evaluate("window.__repeats") == [False, True, True, True, True]
    page.wait_for_function(
        "prev => { const c = document.querySelector('#queue-card');"
        " return c && c.dataset.submission && c.dataset.submission !== prev; }",
        arg=None,
    )
    page.wait_for_timeout(500)  # anything a repeat might have sent has arrived by now
    labels = Annotation.objects.filter(annotator=analyst)
    assert labels.count() == 1
    assert labels.get().case.external_id == shown
    assert posts == []


def test_fast_presses_answer_each_card_at_most_once(live_server, guarded_page) -> None:
    """Keydowns 5 ms apart (no repeat flag) answer a card once; none falls through to a
    full-page post, and every labelled case was on screen when its key was pressed."""
    page = guarded_page
    project = small_project()
    analyst = member(project)
    log_in(page, live_server.url, analyst.username)
    page.goto(f"{live_server.url}/projects/{project.slug}/queue/")
    page.wait_for_selector("#case-title")
    posts = _document_posts(page)
    page.evaluate(
        "() => { window.__seen = [];"
        " document.addEventListener('keydown', () => { const t = document.querySelector('.case-id');"
        " if (t) window.__seen.push(t.textContent); }, true); }"
    )
    for _ in range(5):
        page.keyboard.press("1")
        page.wait_for_timeout(5)
    page.wait_for_timeout(800)
    seen = set(page.evaluate("window.__seen"))
    labelled = [a.case.external_id for a in Annotation.objects.filter(annotator=analyst)]
    assert 1 <= len(labelled) < 5
    assert len(set(labelled)) == len(labelled) and set(labelled) <= seen
    assert posts == []


def test_an_empty_style_attribute_survives_swaps_without_csp_reports(
    live_server, guarded_page, guard
) -> None:
    """An extension that leaves `style=""` on form fields must not make htmx's settle step copy
    it back (a CSP style-src-attr violation per swap): htmx settles only `class`."""
    page = guarded_page
    project = small_project()
    analyst = member(project)
    log_in(page, live_server.url, analyst.username)
    page.goto(f"{live_server.url}/projects/{project.slug}/queue/")
    page.wait_for_selector("#case-title")
    config = page.evaluate("htmx.config.attributesToSettle")
    assert config == ["class"]
    for _ in range(3):
        # CSSOM writes are allowed by the CSP; they leave an empty style attribute behind.
        page.evaluate(
            "() => document.querySelectorAll('#queue-card input, #queue-card textarea,"
            " #queue-card button').forEach(el => { el.style.color = 'red';"
            " el.style.removeProperty('color'); })"
        )
        assert page.eval_on_selector("#comment", "el => el.getAttribute('style')") == ""
        press_and_wait(page, "1")
    page.wait_for_timeout(100)
    guard.check(page)
    assert Annotation.objects.filter(annotator=analyst).count() == 3


def test_help_fits_and_label_buttons_are_above_the_fold(live_server, guarded_page) -> None:
    """At 1366x900 the whole help is on screen, title first, nothing to scroll; at 1024x768 the
    card's label buttons are visible without scrolling."""
    page = guarded_page
    project = small_project(slug="merchant-risk", name="Merchant risk")
    _champion_card(project)
    analyst = member(project)
    log_in(page, live_server.url, analyst.username)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/projects/{project.slug}/queue/")
    page.keyboard.press("?")
    box = page.locator("#help .help-card").bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 900, box
    assert page.locator("#help-title").bounding_box()["y"] >= box["y"]
    assert page.eval_on_selector("#help .help-card", "el => el.scrollHeight <= el.clientHeight")
    assert page.locator("#help-close").is_visible()
    page.keyboard.press("Escape")
    page.set_viewport_size({"width": 1024, "height": 768})
    page.evaluate("window.scrollTo(0, 0)")
    for button in page.locator("#queue-card .label-buttons button").all():
        b = button.bounding_box()
        assert b is not None and b["y"] + b["height"] <= 768, b


def test_a_503_answer_keeps_the_card_and_says_the_database_is_unavailable(
    live_server, guarded_page
) -> None:
    """While the database is down an answer gets the 503 notice (workbench/error_pages.py): the
    page shows its words above the card, keeps the card, and the same key answers it once the
    site is back."""
    from django.template.loader import render_to_string

    from workbench.error_pages import MSG_DATABASE_DOWN

    page = guarded_page
    project = small_project()
    analyst = member(project)
    log_in(page, live_server.url, analyst.username)
    page.goto(f"{live_server.url}/projects/{project.slug}/queue/")
    page.wait_for_selector("#case-title")
    shown, before = page.inner_text(".case-id"), submission(page)
    notice = render_to_string("503_partial.html", {"message": MSG_DATABASE_DOWN})
    submit = f"**/projects/{project.slug}/queue/submit/"
    held = _hold(page, submit, "1")
    page.keyboard.press("u")  # waits for the held answer, which fails: nothing to undo after all
    held.fulfill(status=503, body=notice)
    page.wait_for_selector("#queue-card #service-unavailable")
    assert page.inner_text("#service-unavailable") == MSG_DATABASE_DOWN
    assert submission(page) == before and page.inner_text(".case-id") == shown
    assert not Annotation.objects.filter(annotator=analyst).exists()

    page.unroute(submit)
    press_and_wait(page, "1")  # the same card, answered again once the site is back
    page.wait_for_timeout(300)  # an undo left waiting would have been sent by now
    assert page.query_selector("#service-unavailable") is None
    assert page.query_selector("#undone-notice") is None
    answer = Annotation.objects.get(annotator=analyst)
    assert answer.case.external_id == shown and answer.superseded_at is None
