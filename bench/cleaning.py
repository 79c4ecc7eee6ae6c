"""Cleaning a noisy dataset with the review queue, measured against the generator's known truth.

10,000 generated merchants with 20% injected label noise (half uniform flips, half flips to a
neighbouring category) are imported twice into a scratch PostgreSQL database (default
`bench_cleaning`, created, migrated and dropped here), once per arm, with an empty evaluation split
so every case can be reviewed in both arms. A simulated reviewer answers each review item with the
truth 98% of the time (else a uniformly drawn other class): keep the given label when it says the
given label, accept the suggestion when it says that, else pick its class; a group decision is
applied whenever the card offers one. Everything goes through the product's services: the claim
(`queue_claim_next`, role reviewer, review items only), `review_submit`, and the retrain chain.

Arms:
  product  review items in the product's order: made by the retrain chain from the label-issue
           detector's prune set, ranked by issue score x tier impact, with near-duplicate groups.
           The real chain (embed, detect, review items, train, promote, score, refresh) runs
           before the first action and after every RETRAIN_EVERY actions, as the schedule runs it
           with retrain_after_n = RETRAIN_EVERY; reviewed labels train at full weight and leave
           the doubtful set.
  random   review items for cases drawn uniformly from the whole dataset (same services).

Reported at 250, 500, 1,000 and 2,000 actions: the resolved labels' accuracy against the truth (a
case's label is its resolved label, else its given label), net errors fixed (correct labels now
minus at the start), actions against cases resolved (group decisions), and the product arm's net
errors fixed over the random arm's. Targets: >= 4x at 500 and 1,000 actions; accuracy >= 0.88 at
1,000 actions and >= 0.93 at 2,000. Writes bench/results/cleaning.json and cleaning.png.

    .venv/bin/python bench/cleaning.py [--quick] [--cases 10000] [--actions 2000] [--keep-db]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_PG_DB", "bench_cleaning")
DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", "/tmp/bench_cleaning_data"))
os.environ["DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
os.environ["WORKBENCH_DATA_DIR"] = str(DATA_DIR)
os.environ["PIPELINE_FANOUT"] = "0"  # no Celery workers here: the chain embeds in-process
os.environ["WORKER_THREADS"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

from bench.common import (  # noqa: E402
    REVIEWER_ACCURACY,
    Reviewer,
    dataset_state,
    new_figure,
    retrain_run,
    review_decide,
    save_figure,
    scratch_database_create,
    scratch_database_drop,
    truth_of,
    write_result,
)

NOISE = 0.2
SEED = 11
RETRAIN_EVERY = 250
CHECKPOINTS = (250, 500, 1000, 2000)
CURVE_EVERY = 50
TARGET_RATIO = 4.0
TARGET_ACCURACY = {1000: 0.88, 2000: 0.93}


# --- database --------------------------------------------------------------------------------


def create_database() -> None:
    scratch_database_create(SERVER, DB_NAME)


def drop_database() -> None:
    scratch_database_drop(SERVER, DB_NAME)


# --- the world -------------------------------------------------------------------------------


def new_project(slug: str, cases: int) -> Any:
    from labeling.models import Project
    from labeling.services.demo_data import demo_data_generate

    project = Project.objects.create(
        name=slug,
        slug=slug,
        evaluation_fraction=0.0,
        # Retrains run here at fixed points (below), never from the label counter.
        retrain_after_n=10**9,
        claim_policy={"reviewer": ["review"], "admin": ["review"]},
    )
    report = demo_data_generate(project=project, cases=cases, noise=NOISE, seed=SEED)
    if not report.ok:
        raise SystemExit(report.summary())
    return project


def reviewer(username: str) -> Any:
    from django.contrib.auth.models import User

    return User.objects.create_user(username=username, password=None, is_staff=True)


def retrain(project: Any) -> dict[str, Any]:
    started = time.perf_counter()
    # The import asked for one already: that one runs first.
    ran = retrain_run(project, reason="bench: scheduled retrain")
    assert ran is not None
    return {"seconds": round(time.perf_counter() - started, 1), "result": ran[1]}


def random_review_items(project: Any, count: int, seed: int) -> int:
    from labeling.contracts import PickReason
    from labeling.models import Case, QueueKind
    from labeling.services.queue import QueueEntry, queue_items_create

    ids = sorted(Case.objects.filter(project=project).values_list("pk", flat=True))
    rng = random.Random(seed)
    picked = rng.sample(ids, min(count, len(ids)))
    reason = PickReason(strategy="random_review", sentence="Drawn at random for review.")
    entries = [
        QueueEntry(case_id, float(len(picked) - rank), reason, kind=QueueKind.REVIEW)
        for rank, case_id in enumerate(picked)
    ]
    return len(queue_items_create(project=project, entries=entries))


# --- the simulated reviewer ------------------------------------------------------------------


def review(
    project: Any,
    user: Any,
    person: Reviewer,
    truth: dict[int, int],
    actions: int,
    *,
    retrain_every: int | None,
    tag: str,
) -> dict[str, Any]:
    """Claim and decide review items until `actions` decisions; the curve and its checkpoints."""
    from labeling.models import Case
    from labeling.services.queue import queue_claim_next

    start = dataset_state(project, truth)
    curve = [{"actions": 0, "cases_resolved": 0, **start}]
    given = dict(Case.objects.filter(project=project).values_list("pk", "given_label_id"))
    done = resolved = groups = group_members = were_wrong = 0
    dry = False
    retrains: list[dict[str, Any]] = []
    service_ms: list[float] = []
    started = time.perf_counter()
    while done < actions:
        claim = queue_claim_next(project=project, analyst=user, role="reviewer", refill=False)
        item = claim.current
        if item is None and retrain_every and not dry:
            # The product retrains when labels pass N or the queue runs low; a dry review queue
            # before the next scheduled retrain gets one now.
            dry = True
            retrains.append(retrain(project))
            print(f"  [{tag}] queue dry at {done}: retrain {retrains[-1]['seconds']} s", flush=True)
            continue
        if item is None:
            print(f"  [{tag}] the review queue ran dry after {done} actions", flush=True)
            curve.append(
                {"actions": done, "cases_resolved": resolved, **dataset_state(project, truth)}
            )
            break
        dry = False
        t0 = time.perf_counter()
        decision = review_decide(item, user, person, truth[item.case_id], given[item.case_id])
        service_ms.append((time.perf_counter() - t0) * 1000)
        done += 1
        were_wrong += int(given[item.case_id] != truth[item.case_id])
        resolved += 1 + len(decision.members)
        if decision.members:
            groups += 1
            group_members += len(decision.members)
        if done % CURVE_EVERY == 0 or done == actions:
            state = dataset_state(project, truth)
            curve.append({"actions": done, "cases_resolved": resolved, **state})
            print(
                f"  [{tag}] {done:5d} actions  {resolved:5d} cases  accuracy "
                f"{state['correct'] / state['cases']:.4f}  reviewed wrong {were_wrong / done:.2f}",
                flush=True,
            )
        if retrain_every and done % retrain_every == 0 and done < actions:
            dry = False
            retrains.append(retrain(project))
            print(f"  [{tag}] retrain {retrains[-1]['seconds']} s", flush=True)
    return {
        "start": start,
        "curve": curve,
        "actions": done,
        "cases_resolved": resolved,
        "group_decisions": groups,
        "group_members_resolved": group_members,
        "reviewed_given_label_was_wrong": round(were_wrong / max(1, done), 4),
        "retrains": retrains,
        "review_submit_ms_median": round(sorted(service_ms)[len(service_ms) // 2], 2)
        if service_ms
        else None,
        "seconds": round(time.perf_counter() - started, 1),
    }


def at(curve: list[dict[str, Any]], actions: int) -> dict[str, Any] | None:
    return next((p for p in curve if p["actions"] == actions), None)


def summarize(product: dict[str, Any], baseline: dict[str, Any], cases: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in CHECKPOINTS:
        p, r = at(product["curve"], n), at(baseline["curve"], n)
        if p is None or r is None:
            continue
        p_fixed = p["correct"] - product["start"]["correct"]
        r_fixed = r["correct"] - baseline["start"]["correct"]
        out[str(n)] = {
            "product_accuracy": round(p["correct"] / cases, 4),
            "random_accuracy": round(r["correct"] / cases, 4),
            "product_net_fixed": p_fixed,
            "random_net_fixed": r_fixed,
            "ratio": round(p_fixed / r_fixed, 2) if r_fixed > 0 else None,
            "product_cases_resolved": p["cases_resolved"],
        }
    return out


def checks(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for n in (500, 1000):
        s = summary.get(str(n))
        ratio = s and s["ratio"]
        rows.append(
            {
                "check": f"net errors fixed at {n} actions >= {TARGET_RATIO}x random",
                "value": ratio,
                "ok": ratio is not None and ratio >= TARGET_RATIO,
            }
        )
    for n, target in TARGET_ACCURACY.items():
        s = summary.get(str(n))
        value = s and s["product_accuracy"]
        rows.append(
            {
                "check": f"accuracy at {n} actions >= {target}",
                "value": value,
                "ok": value is not None and value >= target,
            }
        )
    return rows


def plot(product: dict[str, Any], baseline: dict[str, Any], cases: int) -> None:
    fig, (left, right) = new_figure(1, 2, figsize=(11, 4.2))
    for arm, name, style in ((product, "product order", "-"), (baseline, "random cases", "--")):
        xs = [p["actions"] for p in arm["curve"]]
        left.plot(xs, [p["correct"] / cases for p in arm["curve"]], style, label=name)
        right.plot(
            xs, [p["correct"] - arm["start"]["correct"] for p in arm["curve"]], style, label=name
        )
    for n, target in TARGET_ACCURACY.items():
        left.plot([n], [target], "k+", markersize=10)
    left.set(xlabel="review actions", ylabel="resolved labels' accuracy (truth)")
    left.set_title("Dataset accuracy (+: targets)")
    right.set(xlabel="review actions", ylabel="net errors fixed")
    right.set_title("Net errors fixed")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, "cleaning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3,000 cases, 500 actions")
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--actions", type=int, default=2_000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    cases, actions = (3_000, 500) if args.quick else (args.cases, args.actions)

    started = time.perf_counter()
    create_database()
    import django

    django.setup()
    from labeling.models import LabelClass

    try:
        print(f"product order: {cases} cases, {actions} actions", flush=True)
        product_project = new_project("cleaning-product", cases)
        truth = truth_of(product_project)
        first = retrain(product_project)
        print(f"  first retrain {first['seconds']} s", flush=True)
        ids = list(LabelClass.objects.filter(project=product_project).values_list("pk", flat=True))
        product = review(
            product_project,
            reviewer("reviewer-product"),
            Reviewer(ids, seed=1),
            truth,
            actions,
            retrain_every=RETRAIN_EVERY,
            tag="product",
        )
        product["first_retrain"] = first

        print("random cases", flush=True)
        random_project = new_project("cleaning-random", cases)
        random_truth = truth_of(random_project)
        random_review_items(random_project, actions + 100, seed=2)
        ids = list(LabelClass.objects.filter(project=random_project).values_list("pk", flat=True))
        baseline = review(
            random_project,
            reviewer("reviewer-random"),
            Reviewer(ids, seed=1),
            random_truth,
            actions,
            retrain_every=None,
            tag="random",
        )
    finally:
        if not args.keep_db:
            drop_database()

    summary = summarize(product, baseline, cases)
    results = {
        "config": {
            "cases": cases,
            "noise": NOISE,
            "seed": SEED,
            "reviewer_accuracy": REVIEWER_ACCURACY,
            "retrain_every": RETRAIN_EVERY,
            "evaluation_fraction": 0.0,
        },
        "summary": summary,
        "product": product,
        "random": baseline,
        "checks": checks(summary),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    print("\nactions  product acc  random acc  net fixed (product / random)  ratio  cases")
    for n, s in summary.items():
        print(
            f"{int(n):7d}  {s['product_accuracy']:.4f}       {s['random_accuracy']:.4f}      "
            f"{s['product_net_fixed']:5d} / {s['random_net_fixed']:5d}"
            f"                {s['ratio']}  {s['product_cases_resolved']}"
        )
    print(
        f"group decisions: {product['group_decisions']} actions resolved "
        f"{product['group_members_resolved']} more cases"
    )
    for row in results["checks"]:
        print(f"  {'PASS' if row['ok'] else 'FAIL'}  {row['check']}: {row['value']}")
    write_result("cleaning", results)
    plot(product, baseline, cases)


if __name__ == "__main__":
    main()
