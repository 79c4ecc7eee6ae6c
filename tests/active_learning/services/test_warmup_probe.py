"""The warm-up comparison judges on the pool probe (a uniform sample), never on the hard picks.

The fixture is built so that the strategy's kind of picks favour a worse challenger: 20 classes
with broad clusters, 10% of the cases borderline (halfway to the next class, their given label
that neighbour). The champion learnt from all 1,000 given labels (right on the plain 90%); the
challenger from the analysts' labels only (an admin set the given-label weight to 0): 68
borderline cases, as uncertainty sampling picks them, plus the probe's 40. On the borderline
cases the challenger is right and the champion wrong, so judged on the analysts' pool labels the
challenger wins; on the population (the probe, the evaluation split) it is far worse (offline:
test macro-F1 0.56 against 0.82).
"""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone

from active_learning.models import ModelStatus
from active_learning.selectors import probe_cases_to_draw, probe_set, probe_state
from active_learning.services import training
from active_learning.services.promotion import promotion_decide
from active_learning.services.queue_probe import PROBE, probe_share
from active_learning.services.queue_refresh import refresh_queue
from labeling.contracts import PickReason
from labeling.models import Case, QueueItem, QueueKind, QueueStatus, ResolvedLabel, Split
from tests.active_learning.services.test_warmup import warmup_project
from tests.factories import CaseFactory, UserFactory
from tests.pipeline import store_vectors

pytestmark = pytest.mark.django_db

N_CLASSES = 20


@pytest.fixture
def hard_world(settings, tmp_path):
    """(project, truth by case id, borderline case ids): 1,000 pool and 200 eval cases."""
    settings.WORKBENCH_DATA_DIR = tmp_path
    project, classes = warmup_project()  # seed 0: the probe's keys and folds are fixed
    pool = CaseFactory.create_batch(1000, project=project, split=Split.POOL)
    # The probe's keys are hashes of case ids: the pool's points go to its cases in key order
    # (the probe's 40 by id, the order its folds are dealt in), so which points the probe, its
    # folds and the hard picks get does not depend on the ids the database gave.
    ranked = probe_cases_to_draw(
        project=project, candidates=np.array([c.pk for c in pool]), count=1000
    )
    ranked[:40] = np.sort(ranked[:40])
    by_id = {case.pk: case for case in pool}
    cases = [by_id[pk] for pk in ranked.tolist()]
    cases += CaseFactory.create_batch(200, project=project, split=Split.EVAL)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(N_CLASSES, 16)) * 2.0
    vectors, truth, borderline = {}, {}, []
    for case in cases:
        c = int(rng.integers(N_CLASSES))
        neighbour = (c + 1) % N_CLASSES
        hard = rng.random() < 0.1
        x = centres[c] + rng.normal(size=16) * 2.5
        if hard:
            x = centres[c] + 0.45 * (centres[neighbour] - centres[c]) + rng.normal(size=16) * 0.3
        case.given_label = classes[neighbour if hard else c]
        vectors[case.content_hash] = x
        truth[case.pk] = classes[c]
        if hard and case.split == Split.POOL:
            borderline.append(case.pk)
    Case.objects.bulk_update(cases, ["given_label"])
    store_vectors(vectors)
    return project, truth, borderline


def _label(case_ids, truth) -> None:
    for case_id in case_ids:
        ResolvedLabel.objects.update_or_create(
            case_id=case_id, defaults={"label": truth[case_id], "source": "annotation"}
        )


def _pool_ids(project) -> np.ndarray:
    return np.array(
        Case.objects.filter(project=project, split=Split.POOL).values_list("pk", flat=True)
    )


def test_hard_picks_that_favour_a_worse_challenger_do_not_promote_it(hard_world):
    project, truth, borderline = hard_world
    v1 = training.train_model(project=project)
    assert promotion_decide(challenger=v1).promote
    # The hard picks stay clear of the probe's next 200 cases: a labelled case below the first
    # unsettled key joins the sample (as it should).
    ahead = probe_cases_to_draw(project=project, candidates=_pool_ids(project), count=240).tolist()
    probe = ahead[:40]
    hard = [pk for pk in borderline if pk not in set(ahead)]
    assert len(hard) == 68  # the fixture's data go to cases in key order: always these 68
    _label(hard + probe, truth)
    evaluation = [pk for pk in sorted(truth) if pk not in set(_pool_ids(project).tolist())][:20]
    _label(evaluation, truth)
    project.given_label_weight = 0.0
    project.save(update_fields=["given_label_weight"])

    v2 = training.train_model(project=project)
    decision = promotion_decide(challenger=v2)

    assert not decision.promote, decision.reason
    assert decision.basis == "cross_fit" and decision.metric == "macro_f1"
    assert "40 randomly drawn analysts' pool labels" in decision.reason
    assert "and on 20 evaluation labels" in decision.reason
    assert decision.challenger.n_samples == 60
    assert decision.challenger.macro_f1 < decision.champion.macro_f1 - 0.1
    v1.refresh_from_db()
    assert v1.status == ModelStatus.CHAMPION


def test_the_probe_sample_is_every_labelled_case_below_the_first_unsettled_key(hard_world):
    """Whoever picked them: a strategy's pick with a low key belongs to the sample, a labelled
    case above the first unsettled key does not (yet), and a skipped case is settled."""
    project, truth, _ = hard_world
    ids = _pool_ids(project)
    ordered = probe_cases_to_draw(project=project, candidates=ids, count=ids.size).tolist()
    assert probe_set(project=project).case_ids.size == 0
    _label(ordered[:10] + ordered[11:15], truth)  # the 11th (by key) still open
    state = probe_state(project=project)
    assert set(probe_set(project=project).case_ids.tolist()) == set(ordered[:10])
    key_of = dict(zip(state.case_ids.tolist(), state.keys.tolist(), strict=True))
    assert state.threshold == key_of[ordered[10]]
    # the 11th was skipped: a done item, no label, nothing live; it is given up on
    QueueItem.objects.create(
        project=project,
        case_id=ordered[10],
        slot=0,
        kind=QueueKind.POOL,
        status=QueueStatus.DONE,
        assigned_to=UserFactory(),
        claimed_at=timezone.now(),
        completed_at=timezone.now(),
    )
    labels = probe_set(project=project)
    assert set(labels.case_ids.tolist()) == set(ordered[:10] + ordered[11:15])
    assert np.allclose(labels.weights, 1 / key_of[ordered[15]])  # 1 / t, equal


def test_the_refresh_spreads_the_probe_among_the_strategy_picks_while_evidence_is_short(
    hard_world, settings
):
    project = hard_world[0]
    settings.PIPELINE_FANOUT = False
    from active_learning.services.scoring import score_pool

    v1 = training.train_model(project=project)
    promotion_decide(challenger=v1)
    scores = score_pool(project=project, version=v1)
    assert probe_share(project) == pytest.approx(0.2)
    refresh_queue(project=project, scores=scores)
    items = list(
        QueueItem.objects.filter(
            project=project, kind=QueueKind.POOL, status=QueueStatus.OPEN
        ).order_by("-priority")
    )
    is_probe = [PROBE in PickReason.from_json(i.reason).details for i in items]
    probes = list(dict.fromkeys(i.case_id for i, p in zip(items, is_probe, strict=True) if p))
    assert len(probes) == round(0.2 * len({i.case_id for i in items}))
    first = list(dict.fromkeys(i.case_id for i in items))[:10]  # noise-aware slots: 2 items
    assert len(set(first) & set(probes)) == 2  # from the first claims on, at the share
    lowest = probe_cases_to_draw(project=project, candidates=_pool_ids(project), count=len(probes))
    assert set(probes) == set(lowest.tolist())  # the lowest keys of the pool
    assert all(
        PickReason.from_json(i.reason).strategy == "random"
        for i, p in zip(items, is_probe, strict=True)
        if p
    )

    project.evaluation_evidence_short = False
    project.save(update_fields=["evaluation_evidence_short"])
    refresh_queue(project=project, scores=scores)
    reasons = QueueItem.objects.filter(
        project=project, kind=QueueKind.POOL, status=QueueStatus.OPEN
    ).values_list("reason", flat=True)
    assert not any(PROBE in PickReason.from_json(r).details for r in reasons)
