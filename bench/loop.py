"""The whole loop through the real services: simulated analysts, the queue, retrains, promotion.

For each arm, 10,000 generated merchants are imported through the product's import
(`demo_data_generate`, 20% injected given-label noise, the demo taxonomy's classes) into a
project with default settings, in a scratch PostgreSQL database (default `bench_loop`, created,
migrated and dropped here) and a scratch WORKBENCH_DATA_DIR. Five simulated analysts (accuracy
0.97, 0.95, 0.92, 0.85, 0.75; a wrong answer goes to a neighbour class, `labeling.synthetic.crowd`;
each flags the given label as noise when their answer differs from it) claim and submit in
round-robin through `queue_claim_next` and `annotation_submit`; before each round a reviewer
(0.98, `bench.common.Reviewer`, claim policy: adjudication and review items only) decides
REVIEWS_PER_ROUND open item through `review_submit`. Whenever the product asks for a
retrain (its label counter passing `retrain_after_n`, a queue running low, the import), the
retrain chain runs in-process at once (no worker: analysts never label while a retrain runs).

A test split of 2,000 generated merchants (another seed) is never imported: its texts are
embedded with the product's encoder and every champion is scored on it against the truth
(`active_learning.ml.metrics.evaluate`). Every 100 labels: the champion's test macro-F1,
accuracy and prohibited-tier recall at 99% precision; the accuracy against the truth of the
labels resolved from analysts' answers, and of every case's label (resolved, else given); the
champion's number and the reason it was promoted; the evaluation labels promotion judges on
and their accuracy against the truth; wall time. Every retrain: the challenger's test figures,
its macro-F1 on the evaluation labels and the decision's reason (read as text).

Arms: the default strategy (product order) and `random`, each at the default
`given_label_weight` and at 0 (analysts' labels only); opt-in, `product_oracle`: product order
at the default weight with analysts who always answer the truth (the most any training mix could
make of the analysts' labels). The ceiling: the product's classifier (`make_classifier` with its
estimator, calibration and class weights) fit on the true labels of all 10,000 imported cases;
beside it, the same fit on the true labels of exactly v1's rows (what the kept given labels'
remaining noise costs, and what leaving out the doubtful cases costs). Figures: the first label count at which
the champion changes; the largest drop of test macro-F1 at a promotion; at weight 0, labels to
reach 95% of the ceiling's macro-F1, product against random; at the default weight, the gain
over v1 at 500 and 1,000 labels; the share of the gap v1 -> ceiling closed at 1,000 labels, by
the champion and by the mean of the challengers trained from 500 to 1,000 labels;
per arm, how well its final evaluation labels rank its model versions (Spearman against the
test macro-F1; beside it, the same cases' true labels). Writes bench/results/loop.json and
loop.png (`--result`: another name).

    .venv/bin/python bench/loop.py [--quick] [--labels 3000] [--arms product,random] [--keep-db]
        [--seed 16] [--result loop]

The full run labels up to 3,000 per arm; a weight-0 arm stops once its champion reaches 95% of
the ceiling. `--quick`: 1,000 labels at the default weight, 500 at weight 0. One run's figures
move with its seed's luck (which challenger promotion kept, which analyst answered which case):
run several seeds (`--seed`, each with its own BENCH_PG_DB and `--result`, two at a time on two
cores) and combine them, each figure per run beside its mean:

    .venv/bin/python bench/loop.py --combine loop_s16,loop_s17,loop_s18 --result loop_seeds
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    Reviewer,
    cached_embeddings,
    dataset_state,
    labels_to_reach,
    new_figure,
    retrain_run,
    review_decide,
    save_figure,
    scratch_database_create,
    scratch_database_drop,
    scratch_environment,
    truth_of,
    write_result,
)
from labeling.synthetic.crowd import SimulatedAnalyst  # noqa: E402

SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_PG_DB", "bench_loop")
DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", "/tmp/bench_loop_data"))

SEED = 16
TEST_SEED = 1_016
SPLIT_SEED = 16_016  # every arm's project draws the same evaluation split
CASES = 10_000
TEST_CASES = 2_000
NOISE = 0.2
CHECK_EVERY = 100
TARGET_SHARE = 0.95  # of the ceiling's test macro-F1
BOOTSTRAP = 100  # the operating point's intervals; the figures here are point estimates
GUARDED_TIER = "prohibited"
ANALYSTS = (
    SimulatedAnalyst("analyst_97", 0.97),
    SimulatedAnalyst("analyst_95", 0.95),
    SimulatedAnalyst("analyst_92", 0.92),
    SimulatedAnalyst("analyst_85", 0.85),
    SimulatedAnalyst("analyst_75", 0.75),
)
# One reviewer beside the five analysts decides this many review or adjudication items per
# round of analysts' labels (a decision is quicker than a label: confirm, accept or a key).
REVIEWS_PER_ROUND = 1
REVIEWER_NAME = "reviewer_98"


@dataclass(frozen=True)
class Arm:
    """One run of the loop: `strategy` None is the project's default, `weight` None its default
    `given_label_weight`; `stop_at_target`: stop once the champion reaches the target;
    `oracle`: every analyst answers the truth (what the labels could be worth at best)."""

    name: str
    strategy: str | None
    weight: float | None
    stop_at_target: bool = False
    oracle: bool = False


ARMS = (
    Arm("product", None, None),
    Arm("random", "random", None),
    Arm("product_w0", None, 0.0, stop_at_target=True),
    Arm("random_w0", "random", 0.0, stop_at_target=True),
)
# Opt-in (`--arms product_oracle`): product order at the default weight with analysts who are
# always right. Its gap closed bounds what any training mix could make of noisy analysts' labels.
ORACLE_ARM = Arm("product_oracle", None, None, oracle=True)


@dataclass
class TestSplit:
    """The never-imported test cases: embeddings (n, dim) and true class indices (n,)."""

    X: np.ndarray
    y: np.ndarray


@dataclass
class Change:
    """The champion after a promotion: at `labels` labels, version `number`, its test figures."""

    labels: int
    number: int
    macro_f1: float
    reason: str


@dataclass
class ArmState:
    arm: Arm
    project: Any
    truth_ids: dict[int, int]  # case id -> true class's id
    truth: dict[int, int]  # case id -> true class index
    given: dict[int, int | None]  # case id -> given class index
    classes: list[Any]  # LabelClass by class index (taxonomy order)
    started: float
    seed: int  # the generated cases', the analysts' and the reviewer's draws
    retrains: list[dict[str, Any]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    tested: dict[int, dict[str, Any]] = field(default_factory=dict)  # version pk -> figures


# --- pure helpers ------------------------------------------------------------------------------


def first_change(changes: Sequence[Change]) -> int | None:
    """The label count at which a champion first replaced another (None: never)."""
    return changes[1].labels if len(changes) > 1 else None


def largest_drop(changes: Sequence[Change]) -> float | None:
    """The largest fall of test macro-F1 from one champion to the next (negative: every
    promotion raised it; None: no promotion replaced a champion)."""
    drops = [a.macro_f1 - b.macro_f1 for a, b in pairwise(changes)]
    return max(drops) if drops else None


def gap_closed(start: float | None, now: float | None, ceiling: float) -> float | None:
    """Share of the gap from `start` to `ceiling` that `now` closes."""
    if start is None or now is None or ceiling <= start:
        return None
    return (now - start) / (ceiling - start)


def rank_agreement(pairs: Sequence[tuple[float | None, float | None]]) -> float | None:
    """Spearman's rank correlation of (x, y) pairs, those with a None left out (None: fewer
    than 3 left, or one side constant)."""
    from scipy.stats import spearmanr

    kept = [(x, y) for x, y in pairs if x is not None and y is not None]
    xs, ys = zip(*kept, strict=True) if kept else ((), ())
    if len(kept) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None  # too few, or one side constant: no ranking to speak of
    return float(spearmanr(xs, ys).statistic)


def ratio(a: int | None, b: int | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


# --- the product's side ------------------------------------------------------------------------


def test_split(n: int) -> TestSplit:
    """`n` generated merchants of another seed, embedded by the product's encoder (cached)."""
    from active_learning.services.embeddings import encoder_get, model_name_current
    from labeling.synthetic import generate
    from labeling.synthetic.crowd import class_indices

    records = generate(n, seed=TEST_SEED, noise=0.0)
    texts = [r.text for r in records]
    X = cached_embeddings(texts, model_name_current(), lambda t: encoder_get().encode(list(t)))
    return TestSplit(X=X, y=class_indices([r.true_label for r in records]))


def test_figures(model: Any, classes: list[Any], test: TestSplit, target: float) -> dict[str, Any]:
    """A model's figures on the test split: macro-F1, accuracy, the guarded tier's recall at the
    target precision (None when no threshold reaches it) and whether that precision is proven."""
    from django.conf import settings
    from threadpoolctl import threadpool_limits

    from active_learning.ml.metrics import evaluate
    from active_learning.services.training import proba_aligned

    with threadpool_limits(settings.WORKER_THREADS):  # as the worker's steps run
        proba = proba_aligned(model, test.X, [c.pk for c in classes])
        report = evaluate(
            test.y,
            proba,
            classes=list(range(len(classes))),
            tiers={i: c.tier for i, c in enumerate(classes)},
            target_precision=target,
            n_bootstrap=BOOTSTRAP,
            random_state=0,
        )
    point = report.tier_point(GUARDED_TIER)
    return {
        "macro_f1": round(float(report.macro_f1 or 0.0), 4),
        "accuracy": round(float(report.accuracy or 0.0), 4),
        "prohibited_recall_at_99": (
            None if point is None or point.recall is None else round(float(point.recall), 4)
        ),
        "prohibited_proven": bool(point and point.enough_evidence),
    }


def version_figures(state: ArmState, version: Any, test: TestSplit) -> dict[str, Any]:
    """A model version's test figures, measured once."""
    from active_learning.services.training import load_version

    if version.pk not in state.tested:
        state.tested[version.pk] = test_figures(
            load_version(version), state.classes, test, state.project.target_precision
        )
    return state.tested[version.pk]


def truth_fit(
    state: ArmState, test: TestSplit, case_ids: Sequence[int], weights: np.ndarray | None = None
) -> dict[str, Any]:
    """The product's classifier fit on the true labels of `case_ids` (weighted), test figures."""
    from django.conf import settings
    from threadpoolctl import threadpool_limits

    from active_learning.ml.classifiers import make_classifier
    from active_learning.services.training import (
        CALIBRATION,
        CLASS_WEIGHT,
        ESTIMATOR,
        features_for,
    )
    from labeling.models import Case

    started = time.perf_counter()
    hash_of = dict(Case.objects.filter(pk__in=case_ids).values_list("pk", "content_hash"))
    X = features_for([hash_of[pk] for pk in case_ids])
    y = np.array([state.classes[state.truth[pk]].pk for pk in case_ids])
    model = make_classifier(
        ESTIMATOR,
        classes=[c.pk for c in state.classes],
        calibration=CALIBRATION,
        class_weight=CLASS_WEIGHT,
        random_state=0,
    )
    with threadpool_limits(settings.WORKER_THREADS):
        model.fit(X, y, sample_weight=weights)
    figures = test_figures(model, state.classes, test, state.project.target_precision)
    seconds = round(time.perf_counter() - started, 1)
    return {**figures, "n_train": len(case_ids), "seconds": seconds}


def ceiling_fit(state: ArmState, test: TestSplit) -> dict[str, Any]:
    """The product's classifier fit on the true labels of every imported case, and on the true
    labels of exactly v1's rows (the given labels detection kept, as weighted): v1 against the
    second is what the kept labels' remaining noise costs, the second against the ceiling what
    leaving out the doubtful cases (and the evaluation split) costs; and on the true labels of
    every pool case, the most the product's training could use."""
    from active_learning.models import ModelVersion
    from active_learning.services.training import TRAINING_ROWS_KEY
    from labeling.models import Case, Split

    cases = Case.objects.filter(project=state.project)
    ceiling = truth_fit(state, test, list(cases.values_list("pk", flat=True)))
    # What any mix of the product's could reach: the evaluation split never trains.
    ceiling["pool_true_labels"] = truth_fit(
        state, test, list(cases.filter(split=Split.POOL).values_list("pk", flat=True))
    )
    # A weight-0 arm's import trains no v1 (no analysts' labels yet): nothing to split then.
    v1 = ModelVersion.objects.filter(project=state.project, number=1).first()
    if v1 is None:
        ceiling["v1_rows_true_labels"] = None
        return ceiling
    with np.load(v1.params[TRAINING_ROWS_KEY]) as rows:
        ids, weights = rows["case_ids"].tolist(), rows["weights"]
    ceiling["v1_rows_true_labels"] = truth_fit(state, test, ids, weights)
    return ceiling


def arm_start(arm: Arm, test: TestSplit, seed: int) -> ArmState:
    """The arm's project with the generated cases imported, its analysts as members, and the
    retrain the import asked for run."""
    from django.contrib.auth.models import User

    from labeling.models import Case, LabelClass, Project, ProjectMembership, ProjectRole, QueueKind
    from labeling.services.demo_data import demo_data_generate

    # The reviewer is dedicated to decisions: review and adjudication items, never pool items.
    policy = {ProjectRole.REVIEWER: [QueueKind.ADJUDICATION, QueueKind.REVIEW]}
    options: dict[str, Any] = {"split_seed": SPLIT_SEED, "claim_policy": policy}
    if arm.strategy is not None:
        options["strategy"] = arm.strategy
    if arm.weight is not None:
        options["given_label_weight"] = arm.weight
    project = Project.objects.create(name=f"loop {arm.name}", slug=f"loop-{arm.name}", **options)
    report = demo_data_generate(project=project, cases=CASES, noise=NOISE, seed=seed)
    if not report.ok:
        raise SystemExit(report.summary())
    # The import queued an embedding job (retrains never wait for one): run it here, as a worker
    # would, before the retrain the import asked for.
    from active_learning.services.embedding_jobs import embedding_pending, embedding_run

    job = embedding_pending(project=project)
    if job is not None:
        embedding_run(job_id=job.pk)
    classes = sorted(LabelClass.objects.filter(project=project), key=lambda c: c.order)
    index = {c.pk: i for i, c in enumerate(classes)}
    truth_ids = truth_of(project)
    truth = {case: index[label] for case, label in truth_ids.items()}
    given: dict[int, int | None] = {
        case: None if label is None else index[label]
        for case, label in Case.objects.filter(project=project).values_list("pk", "given_label_id")
    }
    for a in ANALYSTS:
        user = User.objects.create_user(username=f"{arm.name}-{a.name}", password=None)
        ProjectMembership.objects.create(project=project, user=user)
    user = User.objects.create_user(username=f"{arm.name}-{REVIEWER_NAME}", password=None)
    ProjectMembership.objects.create(project=project, user=user, role=ProjectRole.REVIEWER)
    state = ArmState(arm, project, truth_ids, truth, given, classes, time.perf_counter(), seed)
    retrain_pending(state, 0, test, reason="bench")  # the import asked for one: that one runs
    return state


STEP_SECONDS: dict[str, float] = {}  # the running retrain's seconds per step


def steps_timed() -> None:
    """Wrap the retrain chain's steps so each retrain reports where its time went."""
    from dataclasses import replace

    from active_learning.services import retrain

    def timed(step: Any) -> Any:
        def run(ctx: Any, report: Any) -> None:
            started = time.perf_counter()
            step.run(ctx, report)
            STEP_SECONDS[step.name] = round(time.perf_counter() - started, 2)

        return run

    retrain.PIPELINE = tuple(replace(s, run=timed(s)) for s in retrain.PIPELINE)


def retrain_pending(
    state: ArmState, labels: int, test: TestSplit, reason: str | None = None
) -> bool:
    """Run the retrain the product asked for, if any, in-process (with `reason`: ask for one
    when none is queued); record what it decided."""
    from active_learning.ml.metrics import EvaluationReport
    from active_learning.models import ModelVersion
    from active_learning.selectors import champion_of

    project = state.project
    before = champion_of(project=project)
    started = time.perf_counter()
    STEP_SECONDS.clear()
    ran = retrain_run(project, reason=reason)
    if ran is None:
        return False
    job, result = ran
    seconds = time.perf_counter() - started
    row: dict[str, Any] = {
        "labels": labels,
        "seconds": round(seconds, 1),
        "steps": dict(STEP_SECONDS),
        "reason": (job.params or {}).get("reason"),
        "trained": result.get("trained"),
    }
    if result.get("trained"):
        challenger = ModelVersion.objects.get(project=project, number=result["trained"])
        row["decision_reason"] = challenger.decision_reason
        row["n_train"] = challenger.n_train
        row["n_eval"] = challenger.n_eval
        row["challenger_test"] = version_figures(state, challenger, test)
        # What promotion saw of it: macro-F1 on the evaluation labels (weighted by the design).
        row["challenger_eval_macro_f1"] = EvaluationReport.from_json(challenger.metrics).macro_f1
    after = champion_of(project=project)
    if after is not None and (before is None or before.pk != after.pk):
        figures = version_figures(state, after, test)
        state.changes.append(
            Change(labels, after.number, figures["macro_f1"], after.decision_reason)
        )
        row["promoted"] = after.number
    state.retrains.append(row)
    champion = f"v{after.number}" if after else "none"
    print(
        f"  [{state.arm.name}] {labels:5d} labels: retrain {seconds:5.1f} s, "
        f"trained v{row['trained']}"
        + (f" (test {row['challenger_test']['macro_f1']:.4f})" if "challenger_test" in row else "")
        + f", champion {champion}"
        + (f" (test macro-F1 {state.changes[-1].macro_f1:.4f})" if "promoted" in row else "")
        + (f"; {row['decision_reason'][:110]}" if row.get("decision_reason") else "")
        + f" [{', '.join(f'{k} {v:.1f}' for k, v in row['steps'].items())}]",
        flush=True,
    )
    return True


def checkpoint(state: ArmState, labels: int, test: TestSplit) -> dict[str, Any]:
    """The champion's test figures, the resolved labels' accuracy and the wall time now."""
    from active_learning.selectors import champion_of, evaluation_set
    from labeling.models import ResolutionSource, ResolvedLabel

    champion = champion_of(project=state.project)
    evaluation = evaluation_set(project=state.project)
    evaluation_right = [
        state.truth_ids[int(case)] == int(label)
        for case, label in zip(evaluation.case_ids, evaluation.labels, strict=True)
    ]
    index = {c.pk: i for i, c in enumerate(state.classes)}
    rows = ResolvedLabel.objects.filter(case__project=state.project, excluded=False).exclude(
        source=ResolutionSource.GIVEN
    )
    right = [
        label is not None and index[label] == state.truth[case]
        for case, label in rows.values_list("case_id", "label_id")
    ]
    dataset = dataset_state(state.project, state.truth_ids)
    point = {
        "labels": labels,
        "seconds": round(time.perf_counter() - state.started, 1),
        "retrains": len(state.retrains),
        "retrain_seconds": round(sum(r["seconds"] for r in state.retrains), 1),
        "champion": champion.number if champion else None,
        "champion_reason": champion.decision_reason if champion else None,
        "test": version_figures(state, champion, test) if champion else None,
        # Cases resolved from analysts' labels (annotation, consensus, ...), and every case's
        # label now (resolved, else given) against the truth.
        "resolved_by_analysts": len(right),
        "resolved_by_analysts_accuracy": round(float(np.mean(right)), 4) if right else None,
        "dataset_accuracy": round(dataset["correct"] / dataset["cases"], 4),
        # The labels promotion judges on, against the truth (one analyst's answer each).
        "evaluation_labels": len(evaluation_right),
        "evaluation_labels_accuracy": (
            round(float(np.mean(evaluation_right)), 4) if evaluation_right else None
        ),
    }
    test_f1 = point["test"]["macro_f1"] if point["test"] else float("nan")
    print(
        f"[{state.arm.name}] {labels:5d} labels {point['seconds']:7.1f} s: champion "
        f"v{point['champion']} test macro-F1 {test_f1:.4f}; resolved by analysts "
        f"{point['resolved_by_analysts']} at {point['resolved_by_analysts_accuracy']}; "
        f"dataset {point['dataset_accuracy']}",
        flush=True,
    )
    return point


def review_round(state: ArmState, user: Any, person: Reviewer, tally: dict[str, int]) -> None:
    """The reviewer decides up to REVIEWS_PER_ROUND open review or adjudication items."""
    from labeling.models import ProjectRole
    from labeling.services.queue import queue_claim_next

    for _ in range(REVIEWS_PER_ROUND):
        claim = queue_claim_next(
            project=state.project, analyst=user, role=ProjectRole.REVIEWER, refill=False
        )
        if claim.current is None:
            return
        case_id = claim.current.case_id
        given = state.given[case_id]
        given_id = None if given is None else state.classes[given].pk
        review_decide(claim.current, user, person, state.truth_ids[case_id], given_id)
        tally["decisions"] += 1
        tally["given_was_wrong"] += given != state.truth[case_id]


def evaluation_ranking(state: ArmState, test: TestSplit) -> dict[str, Any]:
    """How well the arm's final evaluation labels rank its model versions: each version's
    weighted macro-F1 on them and on the same cases' true labels (same weights), each ranked
    against its test macro-F1 (Spearman). Promotion can only be as right as the first."""
    from sklearn.metrics import f1_score

    from active_learning.models import ModelVersion
    from active_learning.selectors import evaluation_set
    from active_learning.services.embeddings import embedded_only
    from active_learning.services.training import load_version, proba_of

    labels = embedded_only(evaluation_set(project=state.project))
    column = {c.pk: i for i, c in enumerate(state.classes)}
    said = np.array([column[int(label)] for label in labels.labels], dtype=np.int64)
    true = np.array([state.truth[int(case)] for case in labels.case_ids], dtype=np.int64)
    every = list(range(len(state.classes)))
    rows, numbers = [], []
    for version in ModelVersion.objects.filter(project=state.project).exclude(artifact_path=""):
        predicted = proba_of(load_version(version), labels, state.classes).argmax(axis=1)
        on = {
            name: float(
                f1_score(
                    y,
                    predicted,
                    labels=every,
                    average="macro",
                    zero_division=0,
                    sample_weight=labels.weights,
                )
            )
            for name, y in (("labels", said), ("truth", true))
        }
        rows.append((version_figures(state, version, test)["macro_f1"], on["labels"], on["truth"]))
        numbers.append(version.number)
    return {
        "versions": len(rows),
        # per version: its test macro-F1 and its macro-F1 on the final evaluation labels and on
        # the same cases' true labels (does the sample favour one version?)
        "per_version": [
            {"version": v, "test": round(t, 4), "labels": round(a, 4), "truth": round(b, 4)}
            for v, (t, a, b) in zip(numbers, rows, strict=True)
        ],
        "evaluation_labels": len(said),
        "evaluation_labels_accuracy": round(float(np.mean(said == true)), 4) if len(said) else None,
        "rank_correlation_labels": rank_agreement([(r[1], r[0]) for r in rows]),
        "rank_correlation_truth": rank_agreement([(r[2], r[0]) for r in rows]),
    }


def arm_run(state: ArmState, test: TestSplit, limit: int, target: float) -> dict[str, Any]:
    """Analysts claim and label in round-robin until `limit` labels (or the queue is dry, or
    the target is reached on an arm that stops there), retraining whenever the product asks."""
    from django.contrib.auth.models import User

    from labeling.selectors_queue import unaided
    from labeling.services.annotations import annotation_submit
    from labeling.services.queue import queue_claim_next
    from labeling.synthetic.crowd import analyst_confusion, draw_labels

    project = state.project
    streams = np.random.default_rng(state.seed).spawn(len(ANALYSTS))
    people = [
        (
            User.objects.get(username=f"{state.arm.name}-{a.name}"),
            np.eye(len(state.classes)) if state.arm.oracle else analyst_confusion(a),
            rng,
        )
        for a, rng in zip(ANALYSTS, streams, strict=True)
    ]
    labels, stopped, answers = 0, "limit", {"right": 0, "flags": 0}
    reviewer = User.objects.get(username=f"{state.arm.name}-{REVIEWER_NAME}")
    person = Reviewer([c.pk for c in state.classes], seed=state.seed)
    reviews = {"decisions": 0, "given_was_wrong": 0}
    points = [checkpoint(state, 0, test)]
    while labels < limit:
        review_round(state, reviewer, person, reviews)
        retrain_pending(state, labels, test)
        served = 0
        for user, confusion, rng in people:
            item = queue_claim_next(project=project, analyst=user).current
            retrain_pending(state, labels, test)  # a queue running low asks for one
            if item is None:
                continue
            true = state.truth[item.case_id]
            answer = int(draw_labels(confusion, np.array([true]), rng)[0])
            given = state.given[item.case_id]
            # A blind card (evaluation, gold, probe) shows no given label to flag.
            flag = given is not None and given != answer and not unaided(item)
            annotation_submit(
                item_or_case=item,
                analyst=user,
                submission_id=uuid.uuid4(),
                label=state.classes[answer],
                noise_flag=flag,
            )
            labels += 1
            served += 1
            answers["right"] += answer == true
            answers["flags"] += flag
            retrain_pending(state, labels, test)
            if labels % CHECK_EVERY == 0:
                points.append(checkpoint(state, labels, test))
                test_f1 = (points[-1]["test"] or {}).get("macro_f1", 0.0)
                if state.arm.stop_at_target and test_f1 >= target:
                    stopped = "target"
                    break
            if labels >= limit:
                break
        if stopped == "target":
            break
        if served == 0 and not retrain_pending(state, labels, test):
            stopped = "queue empty"
            break
    if labels % CHECK_EVERY:
        points.append(checkpoint(state, labels, test))
    return {
        "strategy": project.strategy,
        "given_label_weight": project.given_label_weight,
        "retrain_after_n": project.retrain_after_n,
        "evaluation_overlap": project.evaluation_overlap,
        "labels": labels,
        "stopped": stopped,
        "analyst_accuracy": round(answers["right"] / max(1, labels), 4),
        "noise_flags": answers["flags"],
        "review_decisions": reviews["decisions"],
        "reviewed_given_label_was_wrong": reviews["given_was_wrong"],
        "seconds": round(time.perf_counter() - state.started, 1),
        "checkpoints": points,
        "retrains": state.retrains,
        "champion_changes": [vars(c) for c in state.changes],
        "evaluation_ranking": evaluation_ranking(state, test),
    }


# --- figures -----------------------------------------------------------------------------------


def f1_at(arm: dict[str, Any], labels: int) -> float | None:
    """The champion's test macro-F1 at the checkpoint of `labels` labels (None: not reached)."""
    for point in arm["checkpoints"]:
        if point["labels"] == labels and point["test"]:
            return float(point["test"]["macro_f1"])
    return None


def labels_run(arm: dict[str, Any]) -> int:
    """The labels an arm's run answered (its last checkpoint)."""
    return max((int(p["labels"]) for p in arm.get("checkpoints", [])), default=0)


def v1_f1(arm: dict[str, Any]) -> float | None:
    changes = arm["champion_changes"]
    return float(changes[0]["macro_f1"]) if changes else None


def challenger_mean(arm: dict[str, Any], low: int, high: int) -> float | None:
    """The mean test macro-F1 of the challengers trained between `low` and `high` labels: what
    the training mix makes of the labels, without the luck of which one promotion kept."""
    scores = [
        float(r["challenger_test"]["macro_f1"])
        for r in arm.get("retrains", [])
        if low <= r["labels"] <= high and r.get("challenger_test")
    ]
    return float(np.mean(scores)) if scores else None


def pool_macro_f1(ceiling: dict[str, Any]) -> float | None:
    """The pool ceiling's macro-F1 (None in runs stored before it was measured)."""
    pool = ceiling.get("pool_true_labels")
    return float(pool["macro_f1"]) if pool else None


def figures(
    arms: dict[str, dict[str, Any]], ceiling: float, pool_ceiling: float | None = None
) -> dict[str, Any]:
    target = TARGET_SHARE * ceiling

    def changes(name: str) -> list[Change]:
        return [Change(**c) for c in arms[name]["champion_changes"]] if name in arms else []

    def to_target(name: str) -> int | None:
        steps = changes(name)
        return labels_to_reach([c.labels for c in steps], [c.macro_f1 for c in steps], target)

    out: dict[str, Any] = {
        "ceiling_macro_f1": ceiling,
        "target_macro_f1": round(target, 4),
        "first_champion_change": {n: first_change(changes(n)) for n in arms},
        "largest_drop_at_promotion": {
            n: None if (d := largest_drop(changes(n))) is None else round(d, 4) for n in arms
        },
        "v1_macro_f1": {n: v1_f1(a) for n, a in arms.items()},
    }
    w0 = {n: to_target(n) for n in ("product_w0", "random_w0")}
    out["weight0_labels_to_target"] = {**w0, "ratio": ratio(w0["product_w0"], w0["random_w0"])}
    # Random order may not reach the target within its run: then the ratio is below the
    # product's count over the labels random order answered without reaching it.
    ran = labels_run(arms["random_w0"]) if "random_w0" in arms else None
    if w0["product_w0"] is not None and w0["random_w0"] is None and ran:
        out["weight0_labels_to_target"]["ratio_below"] = round(w0["product_w0"] / ran, 4)
    # The oracle arm is opt-in: its figures appear only when it ran.
    default_weight = ("product", "random", *([ORACLE_ARM.name] if ORACLE_ARM.name in arms else []))
    for at in (500, 1000):
        gains = {}
        for n in default_weight:
            start, now = (v1_f1(arms[n]), f1_at(arms[n], at)) if n in arms else (None, None)
            gains[n] = None if start is None or now is None else round(now - start, 4)
        out[f"gain_over_v1_at_{at}"] = gains
    # One champion's test score swings by about +-0.005 from one retrain to the next; the mean
    # of the challengers trained from 500 to 1,000 labels is the steadier view of the mix. Both
    # against the ceiling and, where measured, against what the pool's true labels reach.
    scores = {
        "gap_closed_at_1000": lambda arm: f1_at(arm, 1000),
        "challenger_mean_gap_closed_500_1000": lambda arm: challenger_mean(arm, 500, 1000),
    }
    tops = {"": ceiling}
    if pool_ceiling is not None:
        out["pool_ceiling_macro_f1"] = tops["_pool"] = pool_ceiling
    for suffix, top in tops.items():
        for key, score in scores.items():
            out[f"{key}{suffix}"] = {
                n: None if (g := gap_closed(v1_f1(arms[n]), score(arms[n]), top)) is None
                else round(g, 4)
                for n in default_weight
                if n in arms
            }  # fmt: skip
    return out


def seeds_combined(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Figures of several stored runs (one per seed) side by side, with each per-arm number's
    mean over the runs that have it: one run's figure moves with its seed's luck."""

    def side_by_side(per_run: dict[str, Any]) -> dict[str, Any]:
        numbers = [float(v) for v in per_run.values() if isinstance(v, int | float)]
        return {"runs": per_run, "mean": round(float(np.mean(numbers)), 4) if numbers else None}

    combined: dict[str, Any] = {}
    keys = dict.fromkeys(key for run in runs.values() for key in run["figures"])
    for key in keys:
        values = {name: run["figures"].get(key) for name, run in runs.items()}
        if all(not isinstance(v, dict) for v in values.values()):
            combined[key] = side_by_side(values)
            continue
        arms = dict.fromkeys(arm for v in values.values() if isinstance(v, dict) for arm in v)
        combined[key] = {}
        for arm in arms:
            combined[key][arm] = side_by_side(
                {name: v.get(arm) if isinstance(v, dict) else None for name, v in values.items()}
            )
            if key in GAP_FIGURES:
                combined[key][arm]["pooled"] = gap_pooled(runs, key, arm)
    return combined


GAP_FIGURES = ("gap_closed_at_1000", "challenger_mean_gap_closed_500_1000")


def gap_pooled(runs: dict[str, dict[str, Any]], key: str, arm: str) -> float | None:
    """The gap closed over all `runs` together: their gains over v1 summed over their gaps
    (v1 -> ceiling) summed. A seed whose v1 starts near its ceiling leaves a small gap, where
    one retrain's luck makes its own share swing by tens of points; pooled, it weighs little."""
    gains = gaps = 0.0
    for run in runs.values():
        figures = run["figures"]
        share = (figures.get(key) or {}).get(arm)
        v1 = (figures.get("v1_macro_f1") or {}).get(arm)
        if share is None or v1 is None:
            continue
        gap = float(figures["ceiling_macro_f1"]) - float(v1)
        gains += float(share) * gap
        gaps += gap
    return round(gains / gaps, 4) if gaps > 0 else None


def combine(names: list[str], result: str) -> None:
    """Write `result`: the stored runs `names` (bench/results/<name>.json) combined."""
    from bench.common import RESULTS_DIR

    runs = {n: json.loads((RESULTS_DIR / f"{n}.json").read_text(encoding="utf-8")) for n in names}
    combined = seeds_combined(runs)
    configs = {n: {"seed": r["config"]["seed"], "arms": list(r["arms"])} for n, r in runs.items()}
    write_result(result, {"runs": configs, "figures": combined})
    for key, value in combined.items():
        print(f"  {key}: {json.dumps(value)}")


def arms_merged(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One result from stored runs of different arms on the same seed (so the same cases, test
    split and ceiling), each arm run in its own process: their arms side by side, the figures
    computed over all of them."""
    seeds = {r["config"]["seed"] for r in runs.values()}
    ceilings = {r["ceiling"]["macro_f1"] for r in runs.values()}
    if len(seeds) != 1 or len(ceilings) != 1:
        raise SystemExit(f"--merge needs runs of one seed and ceiling: seeds {seeds}, {ceilings}")
    arms: dict[str, Any] = {}
    for name, run in runs.items():
        for arm, figures_of_arm in run["arms"].items():
            if arm in arms:
                raise SystemExit(f"--merge: arm {arm} is in more than one run ({name})")
            arms[arm] = figures_of_arm
    first = next(iter(runs.values()))
    config = {**first["config"], "merged": list(runs)}
    config["labels_per_arm"] = {arm: labels_run(a) for arm, a in arms.items()}
    ceiling = first["ceiling"]
    return {
        "config": config,
        "arms": arms,
        "ceiling": ceiling,
        "figures": figures(arms, ceiling["macro_f1"], pool_macro_f1(ceiling)),
        "total_seconds": round(sum(r.get("total_seconds", 0.0) for r in runs.values()), 1),
    }


def merge(names: list[str], result: str) -> None:
    """Write `result` (and its plot): the stored runs `names` merged by `arms_merged`."""
    from bench.common import RESULTS_DIR

    runs = {n: json.loads((RESULTS_DIR / f"{n}.json").read_text(encoding="utf-8")) for n in names}
    merged = arms_merged(runs)
    write_result(result, merged)
    plot(merged, result)
    for key, value in merged["figures"].items():
        print(f"  {key}: {json.dumps(value)}")


def plot(results: dict[str, Any], result: str) -> None:
    fig, ax = new_figure(figsize=(9, 5))
    colours = {"product": "#1f77b4", "random": "#ff7f0e", "product_w0": "#2ca02c"}
    colours |= {"random_w0": "#d62728", ORACLE_ARM.name: "#9467bd"}
    for name, arm in results["arms"].items():
        points = [p for p in arm["checkpoints"] if p["test"]]
        colour = colours.get(name)
        style = "-" if arm["given_label_weight"] else "--"
        label = f"{name} (weight {arm['given_label_weight']})"
        ax.plot(
            [p["labels"] for p in points],
            [p["test"]["macro_f1"] for p in points],
            style,
            color=colour,
            label=label,
            marker=".",
        )
        # Every challenger, promoted or not: what the analysts' labels did to the model.
        tried = [r for r in arm["retrains"] if r.get("challenger_test")]
        ax.scatter(
            [r["labels"] for r in tried],
            [r["challenger_test"]["macro_f1"] for r in tried],
            s=9,
            marker="x",
            color=colour,
            alpha=0.5,
        )
        v1 = v1_f1(arm)
        if v1 is not None:
            ax.axhline(v1, color=colour, linestyle=":", linewidth=0.8)
    ceiling = results["ceiling"]["macro_f1"]
    ax.axhline(ceiling, color="black", linewidth=1.2, label=f"ceiling (true labels) {ceiling:.3f}")
    ax.axhline(TARGET_SHARE * ceiling, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("analyst labels")
    ax.set_ylabel("champion's test macro-F1")
    ax.set_title(
        "Champion's test macro-F1 (x: each challenger; dotted: each arm's v1; grey: 95% of ceiling)",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 labels (500 at weight 0)")
    parser.add_argument("--labels", type=int, default=3_000, help="per arm")
    parser.add_argument("--arms", default=",".join(a.name for a in ARMS))
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--seed", type=int, default=SEED, help="the generated cases' and the people's draws"
    )
    parser.add_argument(
        "--result", default="loop", help="bench/results/<name>.json and .png (default: loop)"
    )
    parser.add_argument(
        "--combine",
        default="",
        help="comma-separated stored runs (one per --seed): write their figures side by side "
        "with the means to --result, and run nothing",
    )
    parser.add_argument(
        "--merge",
        default="",
        help="comma-separated stored runs of one seed, each of other arms (run in parallel): "
        "write them as one run, with the figures across their arms, to --result, and run nothing",
    )
    args = parser.parse_args()
    if args.merge:
        merge([n for n in args.merge.split(",") if n], args.result)
        return
    if args.combine:
        combine([n for n in args.combine.split(",") if n], args.result)
        return
    limit = 1_000 if args.quick else args.labels
    limit_w0 = limit // 2 if args.quick else limit
    arms = [a for a in (*ARMS, ORACLE_ARM) if a.name in args.arms.split(",")]
    # Calibration folds of the first models, fit on a few dozen labels, say so on every retrain.
    warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
    scratch_environment(SERVER, DB_NAME, DATA_DIR)
    # The product sends its retrain requests to a broker: here they stay in this process's
    # memory (no file left in var/broker) and the queued job is run directly.
    os.environ["CELERY_BROKER_URL"] = "memory://"
    started = time.perf_counter()
    scratch_database_create(SERVER, DB_NAME)
    import django

    django.setup()
    steps_timed()
    results: dict[str, Any] = {
        "config": {
            "cases": CASES,
            "test_cases": TEST_CASES,
            "noise": NOISE,
            "seed": args.seed,
            "test_seed": TEST_SEED,
            "labels": limit,
            "labels_weight0": limit_w0,
            "quick": args.quick,
            "analysts": [{"name": a.name, "accuracy": a.accuracy} for a in ANALYSTS],
        },
        "arms": {},
    }
    try:
        test = test_split(TEST_CASES)
        print(f"test split: {len(test.y)} cases embedded", flush=True)
        ceiling: dict[str, Any] | None = None
        for arm in arms:
            print(f"arm {arm.name}: importing {CASES} cases", flush=True)
            state = arm_start(arm, test, args.seed)
            if ceiling is None:  # the first arm's retrain embedded the cases it fits on
                ceiling = ceiling_fit(state, test)
                results["ceiling"] = ceiling
                kept = ceiling["v1_rows_true_labels"]
                on_v1 = f"; on the true labels of v1's {kept['n_train']} rows " if kept else ""
                print(
                    f"ceiling: test macro-F1 {ceiling['macro_f1']:.4f}"
                    + (f"{on_v1}{kept['macro_f1']:.4f}" if kept else ""),
                    flush=True,
                )
            results["arms"][arm.name] = arm_run(
                state,
                test,
                limit_w0 if arm.weight == 0 else limit,
                TARGET_SHARE * ceiling["macro_f1"],
            )
    finally:
        if not args.keep_db:
            scratch_database_drop(SERVER, DB_NAME)
    assert ceiling is not None
    results["figures"] = figures(results["arms"], ceiling["macro_f1"], pool_macro_f1(ceiling))
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    print(f"\nceiling macro-F1 {ceiling['macro_f1']:.4f}; total {results['total_seconds']} s")
    for key, value in results["figures"].items():
        print(f"  {key}: {value}")
    write_result(args.result, results)
    plot(results, args.result)


if __name__ == "__main__":
    main()
