"""The pipeline's consensus step on real rows: Dawid-Skene over analysts' labels through the
product's submit service, with each given-label source as one more annotator."""

from __future__ import annotations

import random
import uuid

import pytest

from active_learning.services.consensus import consensus_refresh
from labeling.models import (
    AnnotatorReliability,
    Case,
    CaseConsensus,
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolutionSource,
    ResolvedLabel,
    Tier,
)
from labeling.services.adjudication import PROHIBITED, UNCERTAIN
from labeling.services.annotations import Verdict, annotation_submit, review_submit
from labeling.services.consensus import consensus_resolutions_apply
from labeling.services.review_requests import KEEP_OPEN
from tests.factories import AnalystFactory, CaseFactory, LabelClassFactory, QueueItemFactory

pytestmark = pytest.mark.django_db

N_CASES = 90


@pytest.fixture
def classes(project):
    return [
        LabelClassFactory(project=project, tier=Tier.SUPPORTABLE),
        LabelClassFactory(project=project, tier=Tier.SUPPORTABLE),
        LabelClassFactory(project=project, tier=Tier.RESTRICTED),
        LabelClassFactory(project=project, tier=Tier.PROHIBITED),
    ]


def _label(case, analyst, label):
    return annotation_submit(
        item_or_case=case, analyst=analyst, submission_id=uuid.uuid4(), label=label
    )


@pytest.fixture
def world(project, classes):
    """90 cases over 3 supportable/restricted classes, given labels from rule_a (10% wrong) and
    rule_b (40% wrong); two careful analysts (97%, 93%) and one who answers at random label
    every case."""
    rng = random.Random(7)
    usable = classes[:3]
    truth, cases = {}, []
    for i in range(N_CASES):
        true = usable[i % 3]
        source, noise = ("rule_a", 0.1) if i % 2 else ("rule_b", 0.4)
        given = true if rng.random() >= noise else rng.choice([c for c in usable if c != true])
        case = CaseFactory(project=project, given_label=given, given_label_source=source)
        truth[case.pk] = true
        cases.append(case)
    careful = [(AnalystFactory(), 0.97), (AnalystFactory(), 0.93)]
    random_analyst = AnalystFactory()
    for case in cases:
        for analyst, accuracy in careful:
            true = truth[case.pk]
            wrong = rng.choice([c for c in usable if c != true])
            _label(case, analyst, true if rng.random() < accuracy else wrong)
        _label(case, random_analyst, rng.choice(usable))
    return {"truth": truth, "cases": cases, "careful": careful, "random": random_analyst}


def test_consensus_resolves_measures_annotators_and_sources(project, world) -> None:
    result = consensus_refresh(project=project)
    assert result["cases"] == N_CASES
    truth = world["truth"]
    consensus = {c.case_id: c for c in CaseConsensus.objects.filter(project=project)}
    assert len(consensus) == N_CASES
    right = sum(consensus[cid].label_id == truth[cid].pk for cid in truth)
    assert right / N_CASES >= 0.95
    resolved = {r.case_id: r for r in ResolvedLabel.objects.filter(case_id__in=truth)}
    assert {r.source for r in resolved.values()} == {ResolutionSource.CONSENSUS}
    for case_id, row in resolved.items():
        assert row.label_id == consensus[case_id].label_id
        assert row.confidence == pytest.approx(consensus[case_id].posterior, abs=1e-5)
    # A new resolution is a change: the case search's default order puts these cases first.
    changed = dict(Case.objects.filter(pk__in=truth).values_list("pk", "changed_at"))
    assert all(changed[case_id] == row.updated_at for case_id, row in resolved.items())
    reliability = {
        r.annotator_id or r.label_source: r
        for r in AnnotatorReliability.objects.filter(project=project)
    }
    (careful_a, _), (careful_b, _) = world["careful"]
    assert reliability[careful_a.pk].accuracy > 0.85 and reliability[careful_b.pk].accuracy > 0.8
    assert reliability[world["random"].pk].accuracy < 0.6
    assert reliability[careful_a.pk].labels == N_CASES
    # The legacy rules are measured as annotators: rule_a is far cleaner than rule_b.
    assert reliability["rule_a"].accuracy > reliability["rule_b"].accuracy + 0.15
    assert reliability["rule_b"].labels == N_CASES // 2
    matrix = reliability["rule_a"].confusion["matrix"]
    assert len(matrix) == 4 and all(abs(sum(row) - 1) < 1e-3 for row in matrix)


def test_an_unsure_or_prohibited_disagreement_goes_to_adjudication(project, classes, world) -> None:
    """A careful analyst outvoted (never tied) leaves the consensus below a strict threshold; a
    disagreement touching the prohibited tier goes too, however sure the consensus; cases the
    next step finds sure lose their open item (ties, and items answering a dispute, keep theirs)."""
    project.consensus_threshold = 0.9999
    project.save(update_fields=["consensus_threshold"])
    (careful_a, _), (careful_b, _) = world["careful"]
    order = [careful_a, world["random"], careful_b]
    outvoted = CaseFactory(project=project, given_label=classes[0])
    for analyst, label in zip(order, [classes[1], classes[1], classes[2]], strict=True):
        _label(outvoted, analyst, label)
    touching = CaseFactory(project=project, given_label=classes[0])
    for analyst, label in zip(order, [classes[0], classes[0], classes[3]], strict=True):
        _label(touching, analyst, label)
    # The analysts' disputes of the given label asked for reviews; no tie asked for more.
    assert not QueueItem.objects.filter(
        case__in=[outvoted, touching], kind=QueueKind.ADJUDICATION
    ).exists()
    consensus_refresh(project=project)
    why = {
        item.case_id: item.reason["strategy"]
        for item in QueueItem.objects.filter(project=project, kind=QueueKind.ADJUDICATION)
    }
    assert why[outvoted.pk] == UNCERTAIN and why[touching.pk] == PROHIBITED
    # Each case's review became its adjudication: one decision item per case.
    for case in (outvoted, touching):
        live = QueueItem.objects.filter(case=case, kind__in=["review", "adjudication"])
        assert list(live.values_list("kind", flat=True)) == ["adjudication"]
    assert CaseConsensus.objects.get(case=outvoted).posterior < project.consensus_threshold
    project.consensus_threshold = 0.0
    project.save(update_fields=["consensus_threshold"])
    consensus_refresh(project=project)
    live = QueueItem.objects.filter(
        project=project, kind=QueueKind.ADJUDICATION, status=QueueStatus.OPEN
    )
    # Only items that also answer an analyst's dispute (taken over from a second opinion) stay.
    unsure = live.filter(reason__strategy=UNCERTAIN)
    assert not unsure.exclude(reason__details__has_key=KEEP_OPEN).exists()
    assert set(unsure.values_list("reason__details__keep_open", flat=True)) <= {"second_opinion"}
    assert live.filter(case=touching, reason__strategy=PROHIBITED).exists()


def test_adjudication_beats_consensus_and_a_late_label_is_not_overwritten(
    project, classes, world
) -> None:
    cases = world["cases"]
    decided, late = cases[0], cases[1]
    item = QueueItemFactory(case=decided, kind=QueueKind.ADJUDICATION, slot=90)
    review_submit(
        item=item,
        reviewer=AnalystFactory(),
        submission_id=uuid.uuid4(),
        verdict=Verdict.RELABEL,
        label=classes[2],
    )
    consensus_refresh(project=project)
    assert ResolvedLabel.objects.get(case=decided).source == ResolutionSource.ADJUDICATED
    assert ResolvedLabel.objects.get(case=decided).label == classes[2]
    # A fourth label after the step: the majority vote stands until the next step.
    seen = CaseConsensus.objects.get(case=late)
    _label(late, AnalystFactory(), classes[1])
    before = ResolvedLabel.objects.get(case=late)
    assert before.source == ResolutionSource.ANNOTATION
    from labeling.services.consensus import CaseResult

    stale = CaseResult(late.pk, seen.label_id, 0.99, False, 3, 0, 1.0)
    assert consensus_resolutions_apply(project=project, cases=[stale]) == 0
    assert ResolvedLabel.objects.get(case=late).source == ResolutionSource.ANNOTATION
    # The next step sees it.
    consensus_refresh(project=project)
    assert ResolvedLabel.objects.get(case=late).source == ResolutionSource.CONSENSUS


def test_without_analyst_labels_the_step_does_nothing(project, classes) -> None:
    CaseFactory(project=project, given_label=classes[0])
    assert consensus_refresh(project=project) == {"cases": 0}
    assert not CaseConsensus.objects.filter(project=project).exists()
    assert not QueueItem.objects.filter(project=project, status=QueueStatus.OPEN).exists()


def test_an_analysts_gold_answers_are_stored_with_their_reliability(
    project, classes, world
) -> None:
    """A decided case served back as gold: the careful analyst answers it right, the random one
    wrong; the step stores each one's gold answers beside their estimate."""
    decided = world["cases"][0]
    ResolvedLabel.objects.filter(case=decided).update(
        label=classes[2], source=ResolutionSource.REVIEW
    )
    (careful, _), _ = world["careful"]
    for analyst, label in ((careful, classes[2]), (world["random"], classes[0])):
        item = QueueItemFactory(case=decided, kind=QueueKind.GOLD, slot=50 + analyst.pk)
        # The analyst's earlier queue label of this case makes way for the gold answer.
        annotation_submit(
            item_or_case=item, analyst=analyst, submission_id=uuid.uuid4(), label=label
        )
    consensus_refresh(project=project)
    rows = {r.annotator_id: r for r in AnnotatorReliability.objects.filter(project=project)}
    assert (rows[careful.pk].gold_labels, rows[careful.pk].gold_correct) == (1, 1)
    assert (rows[world["random"].pk].gold_labels, rows[world["random"].pk].gold_correct) == (1, 0)
    assert rows[world["careful"][1][0].pk].gold_labels == 0


def test_a_stale_label_does_not_keep_a_case_from_its_consensus(project, world) -> None:
    """A label of an older text is not counted by the step nor by the check before writing: the
    case still resolves to its consensus."""
    from labeling.models import Annotation

    case = world["cases"][2]
    stale = Annotation.objects.filter(case=case).order_by("id").first()
    Annotation.objects.filter(pk=stale.pk).update(content_hash="0" * 64)
    consensus_refresh(project=project)
    assert CaseConsensus.objects.get(case=case).analyst_labels == 2
    assert ResolvedLabel.objects.get(case=case).source == ResolutionSource.CONSENSUS


def test_agreeing_analysts_are_never_overruled_by_estimated_error_rates(project, classes) -> None:
    """A legacy rule that is right on every other case and two analysts right only 60% of the
    time: Dawid-Skene believes the rule when both analysts reject its label on one more case, and
    a third class can come out on top where they disagree. The resolution stays among the
    labels the analysts gave (theirs when they agree), and an unsure one goes to adjudication."""
    rng = random.Random(11)
    usable = classes[:3]
    analysts = [AnalystFactory(), AnalystFactory()]
    for i in range(150):
        true = usable[i % 3]
        case = CaseFactory(project=project, given_label=true, given_label_source="rule_a")
        for analyst in analysts:
            wrong = rng.choice([c for c in usable if c != true])
            _label(case, analyst, true if rng.random() < 0.6 else wrong)
    rejected = CaseFactory(project=project, given_label=usable[0], given_label_source="rule_a")
    for analyst in analysts:
        _label(rejected, analyst, usable[1])
    split = CaseFactory(project=project, given_label=usable[0], given_label_source="rule_a")
    _label(split, analysts[0], usable[1])
    _label(split, analysts[1], usable[2])

    consensus_refresh(project=project)

    resolved = {r.case_id: r for r in ResolvedLabel.objects.filter(case__in=[rejected, split])}
    assert resolved[rejected.pk].label_id == usable[1].pk
    assert resolved[split.pk].label_id in {usable[1].pk, usable[2].pk}
    stored = CaseConsensus.objects.get(case=rejected)
    assert stored.label_id == usable[1].pk and stored.given_disagrees
    # The model of who errs how doubts the analysts here: a reviewer decides.
    assert stored.posterior < project.consensus_threshold
    assert (
        QueueItem.objects.filter(
            case__in=[rejected, split], kind=QueueKind.ADJUDICATION, status=QueueStatus.OPEN
        ).count()
        == 2
    )
