"""Warm-up promotion and the stratified evaluation sample, through the services on PostgreSQL.

The fixture is the issue's: 20 classes, 3 of them rare, given labels wrong on borderline cases
(between a class and its neighbour, labelled as the neighbour), and the analysts' first 150 pool
labels; the evaluation split has too few labels for the main rule.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from active_learning.ml.metrics import EvaluationReport
from active_learning.ml.promotion import MIN_EVAL_PER_CLASS, MIN_WARMUP_LABELS
from active_learning.models import EvaluationDesign, ModelStatus
from active_learning.selectors import (
    classes_evaluation_cannot_show,
    draw_threshold,
    evaluation_set,
    probe_cases_to_draw,
)
from active_learning.services import training
from active_learning.services.evaluation_sample import evaluation_design_ensure
from active_learning.services.promotion import promotion_decide
from active_learning.services.queue_refresh import eval_items_top_up
from active_learning.services.scoring import Scores
from labeling.models import (
    Case,
    Project,
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolvedLabel,
    Split,
    Tier,
)
from labeling.services.queue.draws import effective_evaluation_fraction
from tests.factories import AnalystFactory, CaseFactory, LabelClassFactory, ProjectFactory
from tests.pipeline import store_vectors

pytestmark = pytest.mark.django_db

N_CLASSES, RARE = 20, (17, 18, 19)


def warmup_project() -> tuple[Project, list]:
    """A project in warm-up (evaluation evidence short), seed 0, with 20 classes: 12
    supportable, 4 restricted, 4 prohibited."""
    # A new project draws its seed at random; the probe's keys and the cross-fit's folds use it.
    project = ProjectFactory(evaluation_evidence_short=True, retrain_after_n=50, split_seed=0)
    tiers = [Tier.SUPPORTABLE] * 12 + [Tier.RESTRICTED] * 4 + [Tier.PROHIBITED] * 4
    return project, [LabelClassFactory(project=project, tier=t) for t in tiers]


@pytest.fixture
def world(settings, tmp_path, monkeypatch):
    """(project, classes, truth by case id): 1,000 pool and 200 eval cases."""
    settings.WORKBENCH_DATA_DIR = tmp_path
    project, classes = warmup_project()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(N_CLASSES, 16)) * 2.0
    priors = np.array([1.0] * 17 + [0.3] * 3)
    priors /= priors.sum()
    vectors, truth = {}, {}
    for i in range(1200):
        c = int(rng.choice(N_CLASSES, p=priors))
        neighbour = (c + 1) % N_CLASSES
        borderline = rng.random() < 0.25
        x = centres[c] + rng.normal(size=16) * 0.6
        if borderline:  # halfway to the neighbour, and the legacy rule called it that
            x = centres[c] + 0.45 * (centres[neighbour] - centres[c]) + rng.normal(size=16) * 0.3
        given = classes[neighbour if borderline else c]
        split = Split.POOL if i < 1000 else Split.EVAL
        case = CaseFactory(project=project, split=split, given_label=given)
        vectors[case.content_hash] = x
        truth[case.pk] = (classes[c], borderline)
    store_vectors(vectors)
    return project, classes, truth


def _probe_split(project: Project, count: int) -> tuple[list[int], set[int]]:
    """The probe's next `count` cases, and the next 200 after them (ids): labelling none of the
    latter keeps the probe's threshold at the first of them, so its sample is exactly the
    `count` cases whatever ids the database gave (a strategy-like label among them would join
    the sample, as it should)."""
    ahead = _probe_cases(project, count + 200)
    return ahead[:count], set(ahead)


def _label(case_ids, truth) -> None:
    for case_id in case_ids:
        ResolvedLabel.objects.update_or_create(
            case_id=case_id, defaults={"label": truth[case_id][0], "source": "annotation"}
        )


def _probe_cases(project: Project, count: int) -> list[int]:
    """The pool probe's next `count` cases (lowest keys), as its draws would queue them."""
    ids = np.array(
        Case.objects.filter(project=project, split=Split.POOL).values_list("pk", flat=True)
    )
    return probe_cases_to_draw(project=project, candidates=ids, count=count).tolist()


def test_probe_and_evaluation_labels_promote_a_better_challenger_under_warm_up(world):
    project, _, truth = world
    v1 = training.train_model(project=project)
    assert promotion_decide(challenger=v1).promote  # no champion yet
    pool = [pk for pk, _ in sorted(truth.items()) if Case.objects.get(pk=pk).split == Split.POOL]
    probe, next_up = _probe_split(project, 60)
    borderline = [pk for pk in pool if truth[pk][1] and pk not in next_up][:100]
    _label(probe + borderline, truth)
    evaluation = [pk for pk in truth if pk not in set(pool)][:20]
    _label(evaluation, truth)  # 20 evaluation labels: the main rule has no evidence

    v2 = training.train_model(project=project)
    decision = promotion_decide(challenger=v2)

    assert decision.promote and decision.provisional, decision.reason
    assert decision.basis == "cross_fit"
    assert "provisional" in decision.reason
    assert "60 randomly drawn analysts' pool labels" in decision.reason
    assert "20 evaluation labels" in decision.reason
    # the strategy-like picks (borderline cases) train both sides but are never scored
    assert decision.challenger.n_samples == decision.champion.n_samples == 80
    assert decision.challenger.macro_f1 > decision.champion.macro_f1
    v2.refresh_from_db()
    assert v2.status == ModelStatus.CHAMPION and v2.decision["provisional"] is True
    project.refresh_from_db()
    assert project.evaluation_evidence_short


def test_too_few_random_labels_keep_the_champion_and_say_why(world):
    """Plenty of the strategy's kind of picks, too few probe and evaluation labels: kept, with
    the numbers (the hard picks alone would have been judged on before)."""
    project, _, truth = world
    promotion_decide(challenger=training.train_model(project=project))
    probe, next_up = _probe_split(project, MIN_WARMUP_LABELS - 6)
    pool = [pk for pk in sorted(truth) if Case.objects.get(pk=pk).split == Split.POOL]
    hard = [pk for pk in pool if truth[pk][1] and pk not in next_up][:100]
    _label(probe + hard, truth)
    _label([pk for pk in sorted(truth) if pk not in set(pool)][:5], truth)
    decision = promotion_decide(challenger=training.train_model(project=project))
    assert not decision.promote and decision.metric == "evidence"
    assert (
        f"{MIN_WARMUP_LABELS - 6} randomly drawn analysts' pool labels and 5 evaluation labels, "
        f"{MIN_WARMUP_LABELS} together needed"
    ) in decision.reason


def _scores(project: Project, classes) -> Scores:
    """A champion's scores over every case: predicted class = the given label (a stand-in model
    whose strata are known), one-hot probabilities."""
    version = project.model_versions.create(number=99, status=ModelStatus.CHAMPION)
    cases = list(Case.objects.filter(project=project).order_by("pk"))
    index = {c.pk: j for j, c in enumerate(classes)}
    proba = np.zeros((len(cases), len(classes)), dtype=np.float32)
    proba[np.arange(len(cases)), [index[c.given_label_id] for c in cases]] = 1.0
    return Scores(
        version=version,
        case_ids=np.array([c.pk for c in cases], dtype=np.int64),
        is_eval=np.array([c.split == Split.EVAL for c in cases]),
        rows=np.arange(len(cases)),
        proba=proba,
        class_ids=[c.pk for c in classes],
    )


@pytest.mark.parametrize(
    ("per_case", "cases", "done", "more_cases"),
    [
        (1, 150, 40, 40),  # the default: one item (analyst) per case
        (2, 75, 75, 38),  # evaluation_overlap = 2: 75 items missing, 38 cases of 2
    ],
)
def test_evaluation_items_are_drawn_stratified_and_weighted_by_inclusion(
    world, per_case, cases, done, more_cases
):
    """Cases are drawn in the design's key order, `evaluation_overlap` items (analysts) each,
    never a case twice; each labelled case weighs 1 / its own inclusion probability, one per
    case."""
    project, classes, truth = world
    assert project.evaluation_overlap == 1  # the default
    project.evaluation_overlap = per_case
    project.save()
    scores = _scores(project, classes)
    assert evaluation_design_ensure(project=project, scores=scores) == 200
    assert evaluation_design_ensure(project=project, scores=scores) == 0  # made once
    made = eval_items_top_up(project=project)  # the design stands; cards without model facts
    # warm-up: the stock is scaled to the warm-up share (0.3 / 0.1 of a batch of 50), in
    # items: `cases` cases of `per_case` items each
    assert made == 150 == QueueItem.objects.filter(kind=QueueKind.EVALUATION).count()
    per_case_items = Counter(
        QueueItem.objects.filter(kind=QueueKind.EVALUATION).values_list("case_id", flat=True)
    )
    assert len(per_case_items) == cases and set(per_case_items.values()) == {per_case}
    drawn = set(per_case_items)
    # The first item of `done` cases done (at 2, the other one still open): the stock is short
    # by `done` items, and the top-up draws new cases only (a drawn case is never drawn again).
    first_slots = QueueItem.objects.filter(kind=QueueKind.EVALUATION, slot=0).order_by("pk")
    QueueItem.objects.filter(pk__in=list(first_slots.values_list("pk", flat=True)[:done])).update(
        status=QueueStatus.DONE, assigned_to=AnalystFactory()
    )
    assert eval_items_top_up(project=project) == more_cases * per_case
    again = Counter(
        QueueItem.objects.filter(kind=QueueKind.EVALUATION).values_list("case_id", flat=True)
    )
    assert set(again.values()) == {per_case} and len(again) == cases + more_cases
    QueueItem.objects.filter(kind=QueueKind.EVALUATION).exclude(case_id__in=drawn).delete()
    design = {d.case_id: d for d in EvaluationDesign.objects.filter(project=project)}
    threshold = draw_threshold(project=project)
    assert all(design[c].key < threshold for c in drawn)  # drawn in key order
    assert all(d.key >= threshold for c, d in design.items() if c not in drawn)
    rare = [classes[i].pk for i in RARE]
    # rare predicted classes are over-sampled: their share of the draw beats their share of cases
    rare_share = sum(d.size for d in design.values() if d.stratum_id in rare)
    rare_in_split = np.mean([d.stratum_id in rare for d in design.values()])
    assert sum(d.size for d in design.values()) == pytest.approx(1.0)
    assert rare_share > 1.5 * rare_in_split

    _label(list(drawn), truth)
    labels = evaluation_set(project=project)
    assert len(labels) == cases  # one label per case, whatever its items
    weights = dict(zip(labels.case_ids.tolist(), labels.weights.tolist(), strict=True))
    expected = {c: 1 / min(1.0, threshold * design[c].size) for c in drawn}
    assert weights == pytest.approx(expected)
    # over-sampled cases stand for fewer cases of the split
    assert max(weights[c] for c in drawn if design[c].stratum_id in rare) < max(
        weights[c] for c in drawn if design[c].stratum_id not in rare
    )


def test_a_uniform_design_is_stratified_once_a_model_exists_if_nothing_was_drawn(world):
    project, classes, _ = world
    evaluation_design_ensure(project=project, scores=None)
    assert not EvaluationDesign.objects.filter(project=project).exclude(stratum=None).exists()
    evaluation_design_ensure(project=project, scores=_scores(project, classes))
    assert EvaluationDesign.objects.filter(project=project, stratum=None).count() == 0


def test_the_claim_draw_serves_the_warm_up_share_until_evidence_suffices(world):
    project = world[0]
    assert effective_evaluation_fraction(project) == pytest.approx(0.3)
    project.evaluation_evidence_short = False
    assert effective_evaluation_fraction(project) == pytest.approx(0.1)
    project.evaluation_evidence_short, project.evaluation_fraction = True, 0.0
    assert effective_evaluation_fraction(project) == 0.0


def test_a_class_the_evaluation_split_cannot_show_is_not_waited_for(world):
    """A class added after the import has no evaluation case: once every other class has its
    evaluation labels, the main rule judges (without the waiver it would stay in warm-up)."""
    project, classes, truth = world
    promotion_decide(challenger=training.train_model(project=project))
    added = LabelClassFactory(project=project, tier=Tier.SUPPORTABLE)
    evaluation = [pk for pk in sorted(truth) if Case.objects.get(pk=pk).split == Split.EVAL]
    _label(evaluation, truth)
    waived = classes_evaluation_cannot_show(
        project=project, classes=[*classes, added], per_class=MIN_EVAL_PER_CLASS
    )
    assert str(added.pk) in waived and str(classes[0].pk) not in waived

    challenger = training.train_model(project=project)
    report = EvaluationReport.from_json(challenger.metrics)
    assert report.eval_labels_per_class[str(added.pk)] == 0
    assert report.classes_short_of(MIN_EVAL_PER_CLASS, waived) == 0
    decision = promotion_decide(challenger=challenger)
    assert decision.basis == "evaluation" and not decision.provisional, decision.reason
    project.refresh_from_db()
    assert not project.evaluation_evidence_short
