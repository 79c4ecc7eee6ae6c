"""The review card in a real browser: hostile text stays text under the CSP, and a reviewer
decides from the keyboard (y confirms, x + a reason excludes, m + a class key decides for the
near-duplicate group too, u undoes it all)."""

from __future__ import annotations

import pytest

from labeling.contracts import PickReason
from labeling.models import (
    Annotation,
    LabelClass,
    ProjectRole,
    QueueItem,
    QueueKind,
    ResolutionSource,
    ResolvedLabel,
    Tier,
)
from tests.e2e.conftest import log_in
from tests.e2e.test_queue_browser import CARD, member, press_and_wait, submission
from tests.factories import AnnotationFactory, CaseFactory, ProjectFactory, QueueItemFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE = (
    '<script>alert("text")</script>"><img src=x onerror="alert(1)">'
    '<a href="javascript:alert(2)">click</a><svg onload=alert(3)></svg>\u202eexe.gnp '
)


def _world():
    """Three review items (A, B, C by priority) in a project whose every text is hostile."""
    project = ProjectFactory(evaluation_fraction=0.0)
    ok = LabelClass.objects.create(
        project=project,
        name="ok",
        display_name="OK " + HOSTILE,
        shortcut_key="1",
        guideline=HOSTILE,
        examples=[HOSTILE],
    )
    gambling = LabelClass.objects.create(
        project=project, name="gambling", shortcut_key="2", tier=Tier.PROHIBITED
    )
    LabelClass.objects.create(project=project, name="skill", shortcut_key="3")

    def case(ext: str, **fields):
        return CaseFactory(
            project=project,
            external_id=ext,
            text=HOSTILE + f" case {ext} " + "y" * 5000,
            metadata={"business_name": f"{ext} {HOSTILE}", HOSTILE: HOSTILE, "n": 1},
            given_label=ok,
            **fields,
        )

    neighbours = [case(f"N-{i}") for i in range(5)]
    ResolvedLabel.objects.create(case=neighbours[0], label=gambling, source="annotation")
    ResolvedLabel.objects.create(case=neighbours[1], label=None, source="review", excluded=True)
    similar = [
        {"case_id": c.pk, "label_id": ok.pk, "similarity": 0.9 - i / 100}
        for i, c in enumerate(neighbours)
    ]
    reason = PickReason(
        strategy="label_issue",
        sentence=f"The given label {HOSTILE} looks wrong (score 0.91).",
        sentence_blind="The given label looks wrong.",
    ).to_json()
    heads = {}
    members = [case("D"), case("E")]
    for ext, priority in (("A", 30.0), ("B", 20.0), ("C", 10.0)):
        head = case(ext)
        QueueItemFactory(
            case=head,
            kind=QueueKind.REVIEW,
            priority=priority,
            reason=reason,
            suggestion=gambling,
            suggestion_p=0.83,
            similar_cases=similar,
            group=[m.pk for m in members] if ext == "C" else [],
        )
        heads[ext] = head
    from active_learning.models import LabelIssue

    LabelIssue.objects.create(
        project=project,
        case=heads["A"],
        given_label=ok,
        suggested_label=gambling,
        suggested_p=0.83,
        score=0.912,
        self_confidence=0.088,
        in_prune_set=True,
        views=["embedding model"],
    )
    analyst = member(project)
    AnnotationFactory(case=heads["A"], annotator=analyst, label=gambling, comment=HOSTILE)
    reviewer = member(project, role=ProjectRole.REVIEWER)
    return project, reviewer, heads, members, ok, gambling


def _resolved(case) -> ResolvedLabel | None:
    return ResolvedLabel.objects.filter(case=case).first()


def test_review_card_hostile_text_and_keyboard_decisions(live_server, guarded_page) -> None:
    page = guarded_page
    project, reviewer, heads, members, ok, gambling = _world()
    log_in(page, live_server.url, reviewer.username)
    page.goto(f"{live_server.url}/projects/{project.slug}/queue/")
    page.wait_for_selector("#case-title")

    # Everything hostile shows as text; no script ran (the guard fails the test on a dialog or a
    # CSP violation) and no element was injected.
    assert page.get_attribute(CARD, "data-card-kind") == "review"
    assert page.inner_text("#case-title").startswith('A <script>alert("text")</script>')
    assert HOSTILE.strip() in page.inner_text(".case-text")
    assert HOSTILE.strip() in page.locator(".meta dt").all_inner_texts()  # jsonb orders keys
    assert "OK <script>" in page.inner_text("#given-label")
    assert "<script>" in page.inner_text("#reason")
    # The detector's suggestion with its probability, and its score and the agreeing views.
    assert page.inner_text("#suggestion") == (
        "The detector suggests gambling with an out-of-fold probability of 0.83"
    )
    assert page.inner_text("#label-issue") == ("Label-issue score 0.91, flagged by embedding model")
    assert page.locator(".answers-list .comment").inner_text().startswith("<script>")
    assert page.locator(".similar-list li").count() == 5
    assert all("<script>" in t for t in page.locator(".similar-text").all_inner_texts())
    assert page.locator(".similar-list li.excluded .status-excluded").count() == 1
    assert "OK <script>" in page.inner_text(".label-buttons")
    assert page.evaluate("document.querySelectorAll('img, svg, script:not([src])').length") == 0
    assert page.evaluate("document.querySelectorAll('a[href^=javascript]').length") == 0

    # The help lists the review keys while a review card is shown.
    page.keyboard.press("?")
    assert page.is_visible("#help tbody[data-keys-for=review]")
    assert page.is_hidden("#help tbody[data-keys-for=label]")
    page.keyboard.press("Escape")
    # Keys typed in the comment never decide anything.
    page.keyboard.press("c")
    page.keyboard.type("yxm2 " + HOSTILE)
    page.keyboard.press("Escape")
    assert not Annotation.objects.filter(annotator=reviewer).exists()

    # y keeps the given label of A.
    press_and_wait(page, "y")
    resolved = _resolved(heads["A"])
    assert (resolved.label, resolved.source) == (ok, ResolutionSource.REVIEW)
    decision = Annotation.objects.get(annotator=reviewer, case=heads["A"])
    assert decision.comment.startswith("yxm2 <script>") and decision.shown["verdict"] == "confirm"
    assert page.inner_text(".case-id") == "B"

    # x opens the reason; Enter without one submits nothing; with one it excludes B.
    before = submission(page)
    page.keyboard.press("x")
    assert page.eval_on_selector("#exclude", "el => el.open")
    assert page.evaluate("document.activeElement.id") == "exclude-reason"
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert submission(page) == before and _resolved(heads["B"]) is None
    page.select_option("#exclude-reason", "duplicate")
    page.keyboard.press("Tab")
    page.keyboard.type("of A <b>")
    press_and_wait(page, "Enter")
    resolved = _resolved(heads["B"])
    assert resolved.excluded and resolved.label is None
    decision = Annotation.objects.get(annotator=reviewer, case=heads["B"])
    assert decision.exclude_reason == "duplicate: of A <b>"
    assert page.inner_text(".case-id") == "C"

    # m and a class key: C and both near-duplicates become gambling by review.
    assert "these 2 cases too" in page.inner_text("#group")
    page.keyboard.press("m")
    assert page.is_checked("#apply-group")
    press_and_wait(page, "2")
    for case in [heads["C"], *members]:
        resolved = _resolved(case)
        assert (resolved.label, resolved.source) == (gambling, ResolutionSource.REVIEW)

    # u takes the group decision back: C is in front again, the members as before.
    press_and_wait(page, "u")
    assert page.inner_text(".case-id") == "C"
    assert page.get_attribute(CARD, "data-card-kind") == "review"
    for case in [heads["C"], *members]:
        resolved = _resolved(case)
        assert resolved is None or resolved.source != ResolutionSource.REVIEW
    item = QueueItem.objects.get(case=heads["C"], kind=QueueKind.REVIEW)
    assert item.assigned_to == reviewer

    # The case page of the excluded case says so, with the reason as text.
    page.goto(f"{live_server.url}/projects/{project.slug}/cases/B/")
    banner = page.inner_text("#excluded-banner")
    assert "Excluded from the dataset" in banner and "duplicate: of A <b>" in banner
