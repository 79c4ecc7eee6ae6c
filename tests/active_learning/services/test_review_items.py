"""Label issues become review items; reviewers' decisions feed back into detection and the
measured noise of the given labels."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from active_learning.models import Embedding, LabelIssue, LabelNoiseEstimate
from active_learning.services import review_items
from active_learning.services.embeddings import model_name_current
from active_learning.services.issues import find_label_issues
from active_learning.services.queue_refresh import SIMILAR
from active_learning.services.review_items import (
    SENTENCE_BLIND,
    noise_estimates_write,
    review_items_refresh,
    review_target,
)
from labeling.contracts import PickReason
from labeling.models import (
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolutionSource,
    ResolvedLabel,
    Tier,
)
from labeling.services.annotations import Verdict, annotation_submit, review_submit
from tests.factories import AnalystFactory, CaseFactory, LabelClassFactory, ProjectFactory
from workbench.core.models import Job

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

DIM = 16


def _embed(case, vector: np.ndarray) -> None:
    unit = (vector / np.linalg.norm(vector)).astype("<f4")
    Embedding.objects.create(
        model_name=model_name_current(),
        content_hash=case.content_hash,
        dim=DIM,
        vector=unit.tobytes(),
    )


class World:
    """Three well-separated clusters (Retail, Gambling, Crypto) of correctly labelled cases,
    plus cases of the Gambling cluster with wrong given labels: three near-duplicates labelled
    Retail (a rule's systematic mistake), their twin labelled Crypto, and two lone ones.

    The wrong cases sit near the Gambling centre: a linear model cannot carve a region there
    out of the cluster around it, so duplicates with the same wrong label cannot hide each
    other out of fold.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.project = ProjectFactory(batch_size=5, given_label_weight=1.0)
        project = self.project
        self.retail = LabelClassFactory(project=project, name="Retail", tier=Tier.SUPPORTABLE)
        self.gambling = LabelClassFactory(project=project, name="Gambling", tier=Tier.PROHIBITED)
        self.crypto = LabelClassFactory(project=project, name="Crypto", tier=Tier.RESTRICTED)
        self.centre = {
            c.pk: 4.0 * np.eye(DIM)[i]
            for i, c in enumerate((self.retail, self.gambling, self.crypto))
        }
        self.clean = [
            self.case(label, label) for label in (self.retail, self.gambling, self.crypto)
            for _ in range(30)
        ]  # fmt: skip
        twin = self.centre[self.gambling.pk]
        self.dupes = [self.case(self.retail, self.gambling, twin) for _ in range(3)]
        self.twin_other_label = self.case(self.crypto, self.gambling, twin)
        # Off the centre along dimensions no class uses: still Gambling, not near-duplicates.
        self.lone = [
            self.case(self.retail, self.gambling, twin + 1.5 * np.eye(DIM)[d]) for d in (5, 6)
        ]
        self.wrong = [*self.dupes, self.twin_other_label, *self.lone]

    def point(self, cluster) -> np.ndarray:
        return self.centre[cluster.pk] + self.rng.normal(0.0, 0.35, DIM)

    def case(self, given, cluster, near: np.ndarray | None = None):
        # A text that says nothing of the class (the factory's numbers follow creation order,
        # which a word model would learn): the world is built in embedding space.
        words = "".join(self.rng.choice(list("abcdefghij"), 8))
        case = CaseFactory(project=self.project, given_label=given, text=f"Merchant {words}.")
        vector = self.point(cluster) if near is None else near + self.rng.normal(0.0, 0.005, DIM)
        _embed(case, vector)
        return case


@pytest.fixture
def world(settings, tmp_path) -> World:
    settings.WORKBENCH_DATA_DIR = tmp_path
    return World(np.random.default_rng(0))


def _issues(world: World) -> dict[int, LabelIssue]:
    return {i.case_id: i for i in LabelIssue.objects.filter(project=world.project)}


def _open_review_items(project) -> dict[int, QueueItem]:
    items = QueueItem.objects.filter(
        project=project, kind=QueueKind.REVIEW, status=QueueStatus.OPEN
    )
    return {i.case_id: i for i in items}


def _decide(item, verdict, **kwargs):
    return review_submit(
        item=item,
        reviewer=kwargs.pop("reviewer", None) or AnalystFactory(),
        submission_id=uuid.uuid4(),
        verdict=verdict,
        **kwargs,
    )


# Detection ------------------------------------------------------------------------------------


def test_detection_stores_the_suggestions_probability_and_near_duplicate_groups(world) -> None:
    """The three near-duplicates labelled Retail form one group; their twin labelled Crypto and
    the lone errors belong to none."""
    result = find_label_issues(project=world.project)
    issues = _issues(world)
    assert result["checked"] == len(issues) == 96
    flagged = {c for c, i in issues.items() if i.in_prune_set}
    assert flagged == {c.pk for c in world.wrong}
    for issue in issues.values():
        assert issue.suggested_p is not None and 0.0 < issue.suggested_p <= 1.0
    for case in world.wrong:
        issue = issues[case.pk]
        assert issue.suggested_label_id == world.gambling.pk and issue.suggested_p > 0.5
    dupes = [c.pk for c in world.dupes]
    for pk in dupes:
        assert sorted(issues[pk].group) == sorted(set(dupes) - {pk})
    assert result["grouped"] == 3
    for case in [world.twin_other_label, *world.lone, *world.clean]:
        assert not issues[case.pk].group


def test_a_decided_case_leaves_the_prune_set_and_gets_no_review_item(world) -> None:
    """A reviewer confirms the wrong given label of the group (applied to all three): the next
    detection still disagrees with them but no longer flags them, and no item asks again."""
    find_label_issues(project=world.project)
    review_items_refresh(project=world.project)
    items = _open_review_items(world.project)
    assert set(items) == {c.pk for c in world.wrong}
    head = world.dupes[0]
    decision = _decide(items[head.pk], Verdict.CONFIRM, apply_group=True)
    assert len(decision.members) == 2

    result = find_label_issues(project=world.project)
    issues = _issues(world)
    assert result["decided"] == 3
    for case in world.dupes:
        assert not issues[case.pk].in_prune_set
        assert issues[case.pk].suggested_label_id == world.gambling.pk  # still disagrees
    refreshed = review_items_refresh(project=world.project)
    assert refreshed["created"] == 0 and refreshed["cancelled"] == 0
    open_items = _open_review_items(world.project)
    assert set(open_items) == {c.pk for c in [world.twin_other_label, *world.lone]}
    live = QueueItem.objects.filter(
        case__in=world.dupes, kind=QueueKind.REVIEW, status__in=["open", "claimed"]
    )
    assert not live.exists()


def test_an_excluded_case_is_not_checked_and_its_item_is_cancelled(world) -> None:
    find_label_issues(project=world.project)
    review_items_refresh(project=world.project)
    lone = world.lone[0]
    # The exclusion comes from elsewhere (e.g. the case page), so the item is still open.
    ResolvedLabel.objects.update_or_create(
        case=lone, defaults={"label": None, "source": "review", "excluded": True}
    )
    find_label_issues(project=world.project)
    assert lone.pk not in _issues(world)
    result = review_items_refresh(project=world.project)
    assert result["cancelled"] == 1
    assert lone.pk not in _open_review_items(world.project)


# Review items ---------------------------------------------------------------------------------


def _issue(world: World, case, *, label, suggested, score: float, group=()) -> LabelIssue:
    return LabelIssue.objects.create(
        project=world.project,
        case=case,
        given_label=label,
        suggested_label=suggested,
        suggested_p=0.91,
        score=score,
        self_confidence=1.0 - score,
        in_prune_set=True,
        group=list(group) or None,
    )


def test_review_items_are_ranked_by_priority_and_state_the_detectors_facts(world) -> None:
    """At equal scores, a suspected prohibited case labelled supportable comes before a mix-up
    within a tier; each item says why in words and carries the detector's suggestion."""
    missed, mixup = world.lone
    _issue(world, missed, label=world.retail, suggested=world.gambling, score=0.96)
    _issue(world, mixup, label=world.retail, suggested=world.retail, score=0.96)
    mixup_other = world.dupes[0]
    _issue(world, mixup_other, label=world.gambling, suggested=world.gambling, score=0.5)
    result = review_items_refresh(project=world.project)
    assert result["created"] == 3 and result["candidates"] == 3
    items = _open_review_items(world.project)
    # error probability: the out-of-fold margin, p(suggested) 0.91 - p(label) 0.04, calibrated
    assert items[missed.pk].priority == pytest.approx((0.91 - 0.04) ** 12 * 1.6, abs=1e-5)
    assert items[mixup.pk].priority == pytest.approx((0.91 - 0.04) ** 12, abs=1e-5)
    ranked = sorted(items.values(), key=lambda i: -i.priority)
    assert [i.case_id for i in ranked] == [missed.pk, mixup.pk, mixup_other.pk]

    item = items[missed.pk]
    reason = PickReason.from_json(item.reason)
    assert reason.strategy == "label_issue"
    assert reason.sentence == (
        "The label-issue detector doubts the given label Retail: out of fold the model gives it "
        "0.04 and suggests Gambling (0.91)."
    )
    assert reason.sentence_blind == SENTENCE_BLIND.format(whose="the given label")
    for word in ("Retail", "Gambling", "0."):
        assert word not in reason.sentence_blind
    assert reason.class_ids == (world.gambling.pk, world.retail.pk)
    assert reason.probas == (0.91, 0.04) and reason.score == 0.96
    assert (item.suggestion_id, item.suggestion_p) == (world.gambling.pk, 0.91)
    assert item.model_version_id is None and item.alternatives == []
    assert len(item.similar_cases) == SIMILAR
    assert missed.pk not in {s["case_id"] for s in item.similar_cases}
    # An analyst's label overrode the given one: the card says whose label is doubted.
    assert "doubts the analysts' label Gambling" in items[mixup_other.pk].reason["sentence"]


def test_review_items_carry_the_group_without_members_decided_since(world) -> None:
    a, b, c = world.dupes
    for case in world.dupes:
        others = [x.pk for x in world.dupes if x != case]
        _issue(world, case, label=world.retail, suggested=world.gambling, score=0.9, group=others)
    ResolvedLabel.objects.create(case=c, label=world.retail, source=ResolutionSource.REVIEW)
    review_items_refresh(project=world.project)
    items = _open_review_items(world.project)
    assert set(items) == {a.pk, b.pk}  # c is decided: no item
    assert items[a.pk].group == [b.pk] and items[b.pk].group == [a.pk]
    assert items[a.pk].reason["details"]["group_size"] == 1


def test_stale_items_are_cancelled_but_second_opinions_and_claimed_items_are_kept(world) -> None:
    leaves, claimed, stays, disputed = world.lone[0], world.lone[1], *world.dupes[:2]
    for case in (leaves, claimed, stays, disputed):
        _issue(world, case, label=world.retail, suggested=world.gambling, score=0.9)
    # An analyst disputes the given label first: a second opinion, not a pipeline item.
    annotation_submit(
        item_or_case=disputed, analyst=AnalystFactory(), submission_id=uuid.uuid4(),
        label=None, noise_flag=True,
    )  # fmt: skip
    second = QueueItem.objects.get(case=disputed, kind=QueueKind.REVIEW)
    before = (second.priority, second.reason)
    review_items_refresh(project=world.project)
    items = _open_review_items(world.project)
    assert {c: i.reason["strategy"] for c, i in items.items()} == {
        leaves.pk: "label_issue",
        claimed.pk: "label_issue",
        stays.pk: "label_issue",
        disputed.pk: "second_opinion",
    }
    reviewer = AnalystFactory()
    QueueItem.objects.filter(pk=items[claimed.pk].pk).update(
        status=QueueStatus.CLAIMED, assigned_to=reviewer
    )
    LabelIssue.objects.filter(case__in=[leaves, claimed, disputed]).update(in_prune_set=False)
    LabelIssue.objects.filter(case=stays).update(score=0.95, self_confidence=0.05)

    result = review_items_refresh(project=world.project)
    assert (result["cancelled"], result["refreshed"], result["created"]) == (1, 1, 0)
    statuses = {
        case.pk: QueueItem.objects.get(case=case, kind=QueueKind.REVIEW).status
        for case in (leaves, claimed, stays, disputed)
    }
    assert statuses == {
        leaves.pk: QueueStatus.CANCELLED,
        claimed.pk: QueueStatus.CLAIMED,
        stays.pk: QueueStatus.OPEN,
        disputed.pk: QueueStatus.OPEN,
    }
    assert QueueItem.objects.get(case=claimed, kind=QueueKind.REVIEW).assigned_to == reviewer
    second.refresh_from_db()
    assert (second.priority, second.reason) == before
    refreshed = QueueItem.objects.get(case=stays, kind=QueueKind.REVIEW)
    assert refreshed.priority == pytest.approx((0.91 - 0.05) ** 12 * 1.6, abs=1e-5)
    assert "gives it 0.05" in refreshed.reason["sentence"]


def test_the_open_pipeline_review_items_stay_within_the_target(world, monkeypatch) -> None:
    """Only the best `review_target` open items exist; a case that becomes more urgent takes
    the place of the weakest."""
    assert review_target(world.project) == 500
    world.project.batch_size = 80
    assert review_target(world.project) == 800
    monkeypatch.setattr(review_items, "review_target", lambda project: 3)
    cases = world.clean[:6]
    for n, case in enumerate(cases):
        _issue(world, case, label=world.retail, suggested=world.gambling, score=0.5 + n * 0.05)
    review_items_refresh(project=world.project)
    assert set(_open_review_items(world.project)) == {c.pk for c in cases[3:]}
    LabelIssue.objects.filter(case=cases[0]).update(score=0.99)
    result = review_items_refresh(project=world.project)
    assert (result["created"], result["cancelled"], result["refreshed"]) == (1, 1, 2)
    assert set(_open_review_items(world.project)) == {cases[0].pk, cases[4].pk, cases[5].pk}
    assert QueueItem.objects.get(case=cases[3], kind=QueueKind.REVIEW).status == "cancelled"


# The measured noise of the given labels ----------------------------------------------------------


def test_the_noise_estimate_counts_reviewed_wrong_and_excluded_given_labels(world) -> None:
    """Per class of the given label: how many decided cases, how many the decision relabelled,
    how many it excluded. Queue labels, undecided cases and unlabelled cases do not count."""
    retail = world.clean[:6]
    gambling = world.clean[30:32]
    item = lambda case: QueueItem.objects.create(  # noqa: E731
        project=world.project, case=case, kind=QueueKind.REVIEW, slot=50
    )
    _decide(item(retail[0]), Verdict.CONFIRM)
    _decide(item(retail[1]), Verdict.RELABEL, label=world.gambling)
    _decide(item(retail[2]), Verdict.RELABEL, label=world.crypto)
    _decide(item(retail[3]), Verdict.EXCLUDE, exclude_reason="not a merchant")
    _decide(item(retail[4]), Verdict.AMBIGUOUS)
    annotation_submit(  # an analyst's label, no decision: not measured
        item_or_case=retail[5], analyst=AnalystFactory(), submission_id=uuid.uuid4(),
        label=world.gambling,
    )  # fmt: skip
    _decide(item(gambling[0]), Verdict.CONFIRM)
    unlabelled = CaseFactory(project=world.project, given_label=None)
    _decide(item(unlabelled), Verdict.RELABEL, label=world.crypto)
    job = Job.objects.create(kind="retrain", project=world.project)

    assert noise_estimates_write(project=world.project, job=job) == 2
    rows = {
        r.given_label_id: (r.label_source, r.reviewed, r.wrong, r.excluded)
        for r in LabelNoiseEstimate.objects.filter(project=world.project, job=job)
    }
    assert rows == {
        world.retail.pk: ("import", 5, 2, 1),
        world.gambling.pk: ("import", 1, 0, 0),
    }
    retail_row = LabelNoiseEstimate.objects.get(job=job, given_label=world.retail)
    assert retail_row.wrong_fraction == pytest.approx(0.4)
    # A re-run of the same retrain replaces its rows; another retrain adds its own.
    noise_estimates_write(project=world.project, job=job)
    noise_estimates_write(project=world.project, job=Job.objects.create(kind="retrain"))
    assert LabelNoiseEstimate.objects.filter(project=world.project).count() == 4


def test_a_group_decision_counts_every_member_it_resolved(world) -> None:
    find_label_issues(project=world.project)
    review_items_refresh(project=world.project)
    head = _open_review_items(world.project)[world.dupes[0].pk]
    _decide(head, Verdict.ACCEPT, apply_group=True)
    result = review_items_refresh(project=world.project)
    assert result["noise_estimates"] == 1
    row = LabelNoiseEstimate.objects.get(project=world.project)
    assert (row.given_label_id, row.reviewed, row.wrong, row.excluded) == (
        world.retail.pk,
        3,
        3,
        0,
    )


@pytest.mark.parametrize(
    ("p", "text"), [(0.0004, "under 0.01"), (0.04, "0.04"), (0.9971, "over 0.99"), (1.0, "1.00")]
)
def test_a_sentence_never_rounds_a_probability_to_certainty(p, text) -> None:
    from active_learning.services.review_items import _probability

    assert _probability(p) == text
