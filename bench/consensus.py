"""Consensus against majority vote, and the legacy rules' measured noise, on simulated people.

3,000 generated merchants are imported (the product's import, with its `label_source` column)
into a scratch PostgreSQL database (default `bench_consensus`, created, migrated and dropped
here). Their given labels come from three simulated legacy sources with known confusion matrices
(`labeling.synthetic.crowd`): mcc_rules_v2 (10% wrong), ops_team (20%) and vendor_feed (30%),
half of each source's errors going to a neighbouring category. Five simulated analysts with
accuracies 0.95, 0.90, 0.85, 0.70 and one answering at random each label a random 30% of the
cases through the product's submit service (`annotation_submit`), wrong answers drawn toward
neighbour classes; then the retrain chain's consensus step runs (`consensus_refresh`).

Reported, on the cases with two or more analyst labels:
- accuracy against the truth of the product's resolution (Dawid-Skene consensus) and of a
  majority vote over the analysts' labels (ties count as no label; also with ties broken at
  random), and of the resolution between retrains (majority, a tie keeping the earlier label);
- each analyst's estimated accuracy against their real one;
- each legacy source's estimated confusion matrix against the injected one: mean absolute error
  per cell, and per class on the diagonal (the error rate of the source's labels of that class);
  the same figures for "the source is always right" as the naive baseline;
- Krippendorff's alpha with its interval, and the adjudication items queued.
Then the noise-aware overlap arm: another 3,000 generated merchants (20% given-label noise), the
real retrain chain picks and queues cases (a second analyst slot for picks whose model margin is
below 0.2 or that touch the prohibited tier, for at most 20% of them), four simulated analysts
claim and label 800 items through the queue; they are right 90% of the time on plain merchants
and 65% on borderline ones (features of a neighbouring category too; a wrong answer is that
neighbour). Reported: the error rate of labels on noise-aware overlap picks against single-label
picks, and the share of borderline merchants in each.
Target (the issue's): consensus beats majority vote by >= 0.02. Writes bench/results/consensus.json
and consensus.png.

    .venv/bin/python bench/consensus.py [--cases 3000] [--keep-db]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_PG_DB", "bench_consensus")
DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", "/tmp/bench_consensus_data"))
os.environ["DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
os.environ["WORKBENCH_DATA_DIR"] = str(DATA_DIR)
os.environ["PIPELINE_FANOUT"] = "0"  # no Celery workers here: the chain embeds in-process
os.environ["WORKER_THREADS"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

from bench.common import (  # noqa: E402
    new_figure,
    save_figure,
    scratch_database_create,
    scratch_database_drop,
    write_result,
)
from labeling.synthetic.crowd import (  # noqa: E402
    LegacySource,
    SimulatedAnalyst,
    class_indices,
    simulate_analysts,
    simulate_legacy_labels,
)

SEED = 5
SOURCES = (
    LegacySource("mcc_rules_v2", 0.10),
    LegacySource("ops_team", 0.20),
    LegacySource("vendor_feed", 0.30),
)
SOURCE_SHARES = (0.4, 0.3, 0.3)
ANALYSTS = (
    SimulatedAnalyst("analyst_95", 0.95),
    SimulatedAnalyst("analyst_90", 0.90),
    SimulatedAnalyst("analyst_85", 0.85),
    SimulatedAnalyst("analyst_70", 0.70),
    SimulatedAnalyst("analyst_random", None),
)
TARGET_GAIN = 0.02
# The overlap arm: analysts right 90% of the time on plain cases, 65% on borderline ones (a
# merchant showing features of a neighbouring category too), where a wrong answer is that
# neighbour: uncertain cases are where people disagree.
OVERLAP_ANALYSTS = 4
PLAIN_ACCURACY = 0.90
BORDERLINE_ACCURACY = 0.65
OVERLAP_NOISE = 0.2


def new_project(cases: int, seed: int) -> tuple[Any, dict[int, int], Any]:
    """A project of `cases` generated merchants whose given labels come from SOURCES; returns
    it, each case's true class index by case id, and the legacy draw."""
    from labeling.models import Case, Project
    from labeling.services.demo_data import synthetic_classes_ensure
    from labeling.services.imports import case_import_reader
    from labeling.services.imports.readers import RecordsReader
    from labeling.synthetic import category_names, generate

    records = generate(cases, seed=seed, noise=0.0)
    truth = class_indices([r.true_label for r in records])
    legacy = simulate_legacy_labels(
        [r.true_label for r in records], SOURCES, SOURCE_SHARES, seed=seed
    )
    names = category_names()
    project = Project.objects.create(
        name="consensus", slug="consensus", evaluation_fraction=0.0, retrain_after_n=10**9
    )
    synthetic_classes_ensure(project=project)

    def rows() -> Any:
        for i, r in enumerate(records):
            yield {
                "id": r.external_id,
                "text": r.text,
                "label": names[int(legacy.given[i])],
                "label_source": str(legacy.sources[i]),
                "metadata": r.metadata(),
            }

    report = case_import_reader(
        project=project, reader=RecordsReader(rows, total=cases), file_name="bench"
    )
    if not report.ok:
        raise SystemExit(report.summary())
    ids = dict(Case.objects.filter(project=project).values_list("external_id", "pk"))
    by_case = {ids[r.external_id]: int(truth[i]) for i, r in enumerate(records)}
    return project, by_case, legacy


def label_through_the_product(project: Any, truth: dict[int, int], seed: int) -> dict[str, Any]:
    """Every simulated analyst labels their share through `annotation_submit`."""
    from django.contrib.auth.models import User

    from labeling.models import Case, LabelClass, ProjectMembership
    from labeling.services.annotations import annotation_submit
    from labeling.synthetic import category_names

    case_ids = sorted(truth)
    true = np.array([truth[c] for c in case_ids], dtype=np.int64)
    names = category_names()
    simulated = simulate_analysts([names[t] for t in true.tolist()], ANALYSTS, seed=seed)
    # Taxonomy order is the category index.
    class_of = {c.order: c for c in LabelClass.objects.filter(project=project)}
    users = {}
    for a in ANALYSTS:
        users[a.name] = User.objects.create_user(username=a.name, password=None)
        ProjectMembership.objects.create(project=project, user=users[a.name])
    cases = Case.objects.in_bulk(case_ids)
    started = time.perf_counter()
    for position, name, label in zip(
        simulated.cases.tolist(),
        simulated.analysts.tolist(),
        simulated.labels.tolist(),
        strict=True,
    ):
        annotation_submit(
            item_or_case=cases[case_ids[position]],
            analyst=users[name],
            submission_id=uuid.uuid4(),
            label=class_of[label],
        )
    seconds = time.perf_counter() - started
    real = {}
    for a in ANALYSTS:
        mine = simulated.analysts == a.name
        real[a.name] = {
            "labels": int(mine.sum()),
            "accuracy": float(np.mean(simulated.labels[mine] == true[simulated.cases[mine]])),
            "user_id": users[a.name].pk,
        }
    return {
        "labels": int(simulated.labels.shape[0]),
        "submit_seconds": round(seconds, 1),
        "submit_ms_mean": round(1000 * seconds / max(1, simulated.labels.shape[0]), 2),
        "analysts": real,
        "simulated": simulated,
        "case_ids": case_ids,
    }


def resolved_labels(project: Any) -> dict[int, int | None]:
    """Each resolved case's label as a class index (None: no label)."""
    from labeling.models import LabelClass, ResolvedLabel

    index = dict(LabelClass.objects.filter(project=project).values_list("pk", "order"))
    rows = ResolvedLabel.objects.filter(case__project=project).values_list("case_id", "label_id")
    return {c: index.get(lbl) if lbl is not None else None for c, lbl in rows}


def majority(simulated: Any, case_ids: list[int], seed: int) -> tuple[dict, dict]:
    """Majority over analysts' labels per case: ties as no label, and ties broken at random."""
    rng = np.random.default_rng(seed)
    votes: dict[int, list[int]] = {}
    for position, label in zip(simulated.cases.tolist(), simulated.labels.tolist(), strict=True):
        votes.setdefault(case_ids[position], []).append(label)
    strict, broken = {}, {}
    for case, labels in votes.items():
        counts = np.bincount(labels)
        top = np.flatnonzero(counts == counts.max())
        strict[case] = int(top[0]) if len(top) == 1 else None
        broken[case] = int(rng.choice(top))
    return strict, broken


def accuracy(labels: dict[int, int | None], truth: dict[int, int], cases: list[int]) -> float:
    return float(np.mean([labels.get(c) == truth[c] for c in cases])) if cases else float("nan")


def source_errors(project: Any, legacy: Any, truth: dict[int, int]) -> dict[str, Any]:
    """Estimated vs injected confusion of each legacy source (class order = taxonomy order), and
    its estimated accuracy vs its real one on the cases the consensus saw."""
    from labeling.models import AnnotatorReliability, CaseConsensus, LabelClass

    order = dict(LabelClass.objects.filter(project=project).values_list("pk", "order"))
    seen = CaseConsensus.objects.filter(project=project).values_list(
        "case_id", "case__given_label_id", "case__given_label_source"
    )
    hits: dict[str, list[bool]] = {}
    for case_id, given, source in seen:
        hits.setdefault(source, []).append(order[given] == truth[case_id])
    real = {source: float(np.mean(v)) for source, v in hits.items()}
    out = {}
    for row in AnnotatorReliability.objects.filter(project=project).exclude(label_source=""):
        matrix = np.asarray(row.confusion["matrix"], dtype=float)
        positions = [order[c] for c in row.confusion["classes"]]
        estimated = np.zeros_like(matrix)
        estimated[np.ix_(positions, positions)] = matrix
        injected = legacy.confusion[row.label_source]
        naive = np.eye(injected.shape[0])
        out[row.label_source] = {
            "labels": row.labels,
            "estimated_accuracy": round(row.accuracy, 4),
            "mae_per_cell": round(float(np.abs(estimated - injected).mean()), 5),
            "mae_diagonal": round(float(np.abs(np.diag(estimated) - np.diag(injected)).mean()), 4),
            "naive_mae_per_cell": round(float(np.abs(naive - injected).mean()), 5),
            "naive_mae_diagonal": round(float(np.abs(1 - np.diag(injected)).mean()), 4),
            "injected_error_rate": round(float(1 - np.diag(injected).mean()), 4),
            "real_accuracy": round(real.get(row.label_source, float("nan")), 4),
            "estimated_error_rate": round(float(1 - np.diag(estimated).mean()), 4),
        }
    return out


def overlap_arm(cases: int, labels_wanted: int, seed: int, strategy: str) -> dict[str, Any]:
    """Noise-aware overlap through the product: the retrain chain picks and queues cases (a
    second slot for low-margin and prohibited picks, within the budget), simulated analysts
    claim and label them (`queue_claim_next`, `annotation_submit`); returns the error rate of
    labels on noise-aware overlap picks against single-label picks."""
    import random

    from django.contrib.auth.models import User

    from active_learning.services.retrain import KIND, retrain_project
    from active_learning.services.retrain_requests import retrain_request
    from labeling.models import Case, LabelClass, Project, QueueItem, SyntheticTruth
    from labeling.services.annotations import annotation_submit
    from labeling.services.demo_data import demo_data_generate
    from labeling.services.queue import queue_claim_next
    from labeling.services.queue.fill import NOISE_AWARE
    from labeling.synthetic import iter_records, neighbours_of
    from workbench.core.models import Job, JobStatus

    project = Project.objects.create(
        name=f"overlap-{strategy}",
        slug=f"overlap-{strategy}",
        strategy=strategy,
        evaluation_fraction=0.0,
        retrain_after_n=10**9,
        batch_size=max(50, labels_wanted // 4),
        overlap=1,
        overlap_fraction=0.0,
        noise_aware_overlap=True,
    )
    report = demo_data_generate(project=project, cases=cases, noise=OVERLAP_NOISE, seed=seed)
    if not report.ok:
        raise SystemExit(report.summary())
    records = {r.external_id: r for r in iter_records(cases, seed=seed, noise=OVERLAP_NOISE)}
    by_name = {c.name: c for c in LabelClass.objects.filter(project=project)}
    ids = dict(Case.objects.filter(project=project).values_list("pk", "external_id"))
    truth = dict(
        SyntheticTruth.objects.filter(case__project=project).values_list("case_id", "true_label_id")
    )
    started = time.perf_counter()
    job = Job.objects.filter(project=project, kind=KIND, status=JobStatus.QUEUED).first()
    job = job or retrain_request(project=project, reason="bench")
    assert job is not None
    retrain_project(job=job)
    chain_seconds = time.perf_counter() - started
    rng = random.Random(seed)
    analysts = [
        User.objects.create_user(username=f"overlap-{strategy}-{i}", password=None)
        for i in range(OVERLAP_ANALYSTS)
    ]

    def answer(case_id: int) -> Any:
        record = records[ids[case_id]]
        borderline = record.secondary_label is not None
        if rng.random() < (BORDERLINE_ACCURACY if borderline else PLAIN_ACCURACY):
            return by_name[record.true_label]
        if borderline:
            return by_name[record.secondary_label]
        others = neighbours_of(record.true_label) or [n for n in by_name if n != record.true_label]
        return by_name[rng.choice(list(others))]

    answers: list[tuple[bool, bool, bool]] = []  # (noise-aware pick, model pick, wrong)
    idle = 0
    while len(answers) < labels_wanted and idle < len(analysts):
        idle = 0
        for analyst in analysts:
            item = queue_claim_next(project=project, analyst=analyst, refill=False).current
            if item is None:
                idle += 1
                continue
            label = answer(item.case_id)
            annotation_submit(
                item_or_case=item, analyst=analyst, submission_id=uuid.uuid4(), label=label
            )
            details = (item.reason or {}).get("details") or {}
            answers.append(
                (
                    bool(details.get(NOISE_AWARE)),
                    item.model_version_id is not None,
                    label.pk != truth[item.case_id],
                )
            )
    model_picks = [a for a in answers if a[1]]
    aware = [a[2] for a in model_picks if a[0]]
    single = [a[2] for a in model_picks if not a[0]]
    picked = QueueItem.objects.filter(project=project, model_version_id__isnull=False)
    aware_rows = dict(
        picked.filter(reason__details__has_key=NOISE_AWARE).values_list(
            "case_id", f"reason__details__{NOISE_AWARE}__prohibited"
        )
    )
    aware_cases = set(aware_rows)
    single_cases = set(picked.values_list("case_id", flat=True)) - aware_cases

    def borderline_share(case_ids: set[int]) -> float | None:
        if not case_ids:
            return None
        return round(
            float(np.mean([records[ids[c]].secondary_label is not None for c in case_ids])), 4
        )

    return {
        "cases": cases,
        "chain_seconds": round(chain_seconds, 1),
        "labels": len(answers),
        "model_pick_labels": len(model_picks),
        "noise_aware_labels": len(aware),
        "single_labels": len(single),
        "strategy": strategy,
        "noise_aware_cases": len(aware_cases),
        "noise_aware_for_prohibited": sum(1 for v in aware_rows.values() if v),
        "error_rate_noise_aware": round(float(np.mean(aware)), 4) if aware else None,
        "error_rate_single": round(float(np.mean(single)), 4) if single else None,
        "borderline_share_noise_aware": borderline_share(aware_cases),
        "borderline_share_single": borderline_share(single_cases),
    }


def plot(results: dict[str, Any]) -> None:
    fig, (left, right) = new_figure(1, 2, figsize=(11, 4))
    acc = results["accuracy"]
    names = ["majority\n(ties: none)", "majority\n(ties: random)", "between\nretrains", "consensus"]
    values = [
        acc["majority"],
        acc["majority_ties_random"],
        acc["between_retrains"],
        acc["consensus"],
    ]
    left.bar(names, values, color=["#bbb", "#999", "#7aa", "#2a7"])
    left.set_ylim(min(values) - 0.05, 1.0)
    left.set_title(f"Accuracy on {acc['cases']} cases with >= 2 analyst labels")
    for i, v in enumerate(values):
        left.text(i, v + 0.005, f"{v:.3f}", ha="center")
    analysts = results["analysts"]
    xs = np.arange(len(analysts))
    right.bar(xs - 0.2, [a["accuracy"] for a in analysts.values()], 0.4, label="real")
    right.bar(xs + 0.2, [a["estimated"] for a in analysts.values()], 0.4, label="estimated")
    right.set_xticks(xs, [n.replace("analyst_", "") for n in analysts], rotation=0)
    right.set_title("Analysts' accuracy: real vs Dawid-Skene's estimate")
    right.legend()
    save_figure(fig, "consensus")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=3_000)
    parser.add_argument("--overlap-cases", type=int, default=3_000)
    parser.add_argument("--overlap-labels", type=int, default=800)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    scratch_database_create(SERVER, DB_NAME)
    import django

    django.setup()
    from active_learning.services.consensus import consensus_refresh
    from labeling.models import AgreementReport, AnnotatorReliability, QueueItem, QueueKind

    try:
        project, truth, legacy = new_project(args.cases, SEED)
        print(f"imported {len(truth)} cases", flush=True)
        labelled = label_through_the_product(project, truth, SEED)
        print(
            f"{labelled['labels']} analyst labels through annotation_submit "
            f"({labelled['submit_ms_mean']} ms each)",
            flush=True,
        )
        between = resolved_labels(project)
        ties_queued = QueueItem.objects.filter(project=project, kind=QueueKind.ADJUDICATION).count()
        step_started = time.perf_counter()
        step = consensus_refresh(project=project)
        step_seconds = time.perf_counter() - step_started
        after = resolved_labels(project)
        simulated, case_ids = labelled.pop("simulated"), labelled.pop("case_ids")
        counts = np.bincount(simulated.cases, minlength=len(case_ids))
        multi = [case_ids[i] for i in np.flatnonzero(counts >= 2)]
        strict, broken = majority(simulated, case_ids, SEED)
        estimated = {
            r.annotator_id: r
            for r in AnnotatorReliability.objects.filter(project=project, annotator__isnull=False)
        }
        analysts = {
            name: {
                "labels": real["labels"],
                "accuracy": round(real["accuracy"], 4),
                "estimated": round(estimated[real["user_id"]].accuracy, 4),
                "error": round(estimated[real["user_id"]].accuracy - real["accuracy"], 4),
            }
            for name, real in labelled["analysts"].items()
        }
        report = AgreementReport.objects.filter(project=project).latest()
        results: dict[str, Any] = {
            "config": {
                "cases": args.cases,
                "seed": SEED,
                "sources": [
                    {"name": s.name, "noise": s.noise, "share": share}
                    for s, share in zip(SOURCES, SOURCE_SHARES, strict=True)
                ],
                "analysts": [{"name": a.name, "accuracy": a.accuracy} for a in ANALYSTS],
            },
            "labelling": labelled,
            "accuracy": {
                "cases": len(multi),
                "consensus": round(accuracy(after, truth, multi), 4),
                "majority": round(accuracy(strict, truth, multi), 4),
                "majority_ties_random": round(accuracy(broken, truth, multi), 4),
                "between_retrains": round(accuracy(between, truth, multi), 4),
                "single_label_cases": int(np.sum(counts == 1)),
            },
            "analysts": analysts,
            "sources": source_errors(project, legacy, truth),
            "agreement": {
                "alpha": report.alpha,
                "low": report.alpha_low,
                "high": report.alpha_high,
                "cases": report.cases,
                "analyst_pairs": len(report.analyst_pairs),
            },
            "adjudication": {"ties_queued_while_labelling": ties_queued, "step": step},
            "step_seconds": round(step_seconds, 2),
        }
        results["overlap"] = {}
        for strategy in ("diversity", "random"):
            print(f"noise-aware overlap arm, strategy {strategy}", flush=True)
            results["overlap"][strategy] = overlap_arm(
                args.overlap_cases, args.overlap_labels, SEED, strategy
            )
    finally:
        if not args.keep_db:
            scratch_database_drop(SERVER, DB_NAME)
    acc = results["accuracy"]
    gain = acc["consensus"] - acc["majority"]
    worst_analyst = max(
        (abs(a["error"]) for a in analysts.values() if a["labels"] >= 200 and a["accuracy"] > 0.2),
        default=0.0,
    )
    results["checks"] = [
        {
            "check": f"consensus beats majority vote by >= {TARGET_GAIN}",
            "value": round(gain, 4),
            "ok": gain >= TARGET_GAIN,
        },
        {
            "check": "analysts' estimated accuracy within 0.05 (>= 200 labels)",
            "value": worst_analyst,
            "ok": worst_analyst <= 0.05,
        },
        {
            "check": "random analyst estimated <= 0.15",
            "value": analysts["analyst_random"]["estimated"],
            "ok": analysts["analyst_random"]["estimated"] <= 0.15,
        },
    ]
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    print(
        f"\non {acc['cases']} cases with >= 2 analyst labels: consensus {acc['consensus']:.4f}, "
        f"majority {acc['majority']:.4f} (ties random {acc['majority_ties_random']:.4f}), "
        f"between retrains {acc['between_retrains']:.4f}"
    )
    for name, a in analysts.items():
        print(
            f"  {name:15s} {a['labels']:4d} labels  real {a['accuracy']:.3f}  est {a['estimated']:.3f}"
        )
    for name, s in results["sources"].items():
        print(
            f"  {name:13s} MAE/cell {s['mae_per_cell']:.4f} (naive {s['naive_mae_per_cell']:.4f}); "
            f"diagonal {s['mae_diagonal']:.4f} (naive {s['naive_mae_diagonal']:.4f}); "
            f"accuracy real {s['real_accuracy']:.3f} est {s['estimated_accuracy']:.3f}"
        )
    ag = results["agreement"]
    print(f"  alpha {ag['alpha']:.3f} ({ag['low']:.3f}-{ag['high']:.3f}, {ag['cases']} cases)")
    print(f"  consensus step {results['step_seconds']} s; adjudication {results['adjudication']}")
    for strategy, ov in results["overlap"].items():
        print(
            f"  noise-aware overlap ({strategy} picks): {ov['noise_aware_cases']} cases got a "
            f"second analyst ({ov['noise_aware_for_prohibited']} for the prohibited tier); error "
            f"rate of labels on them {ov['error_rate_noise_aware']} ({ov['noise_aware_labels']} "
            f"labels) vs single-label picks {ov['error_rate_single']} ({ov['single_labels']} "
            f"labels); borderline share {ov['borderline_share_noise_aware']} vs "
            f"{ov['borderline_share_single']}"
        )
    for row in results["checks"]:
        print(f"  {'PASS' if row['ok'] else 'FAIL'}  {row['check']}: {row['value']}")
    write_result("consensus", results)
    plot(results)


if __name__ == "__main__":
    main()
