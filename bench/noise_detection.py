"""Label-error detection under human-like noise: cleanlab vs today's detector vs the combined one.

Data: Banking77 train (10,003 texts, 77 classes) and generated merchants (``--merchants`` cases,
20 classes, ``labeling.synthetic``), both embedded with the bundled MiniLM (merchant vectors
cached under ``var/bench/noise/``). Noise (20% of labels, ``--draws`` seeded draws each):
``uniform`` (a random other class), ``confusable`` (the class with the nearest embedding
centroid), ``instance`` (the class a weak model, LR on a 10% sample, most confuses the case with,
cases drawn in proportion to that confusion) and, on merchants, ``borderline`` (borderline
merchants moved to the neighbour category they also look like).
Detectors, all on the same round-1 out-of-fold probabilities (LR C=10, 5 folds, BLAS 1 thread):
``cleanlab`` (its defaults; AGPL-3.0, a baseline only), ``today`` (what
``services/issues.py`` runs: two rounds, ``filter_by="both"``, score 1 - self-confidence),
``combined`` (``noise.views.detect_label_issues``: today's view + neighbours + lexical, weighted
geometric mean) and ``combined_rank`` (the same views, weighted rank average). Reports AP, AUROC,
precision at 100 and F1 of the flagged set, then the reviewer model: 100 flagged cases reviewed
(drawn at random, answered with the truth), AP of the remaining flagged cases before and after
re-ranking. ``--cost`` times each view per 100,000 cases on random data instead.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from al_curve import MODEL_NAME, _encode, banking77_arrays
from cleanlab.filter import find_label_issues as cleanlab_find_label_issues
from cleanlab.rank import get_label_quality_scores
from common import ROOT, load_banking77, new_figure, save_figure, write_result
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from threadpoolctl import threadpool_limits

from active_learning.ml import noise
from active_learning.ml.noise.lexical import lexical_out_of_fold_proba
from active_learning.ml.noise.neighbours import neighbour_label_votes
from active_learning.ml.noise.reviewers import (
    contenders,
    corrections,
    fit_reviewer_model,
    rerank,
    reviewer_features,
)
from active_learning.ml.noise.views import combine_views

RATE = 0.20
KINDS = {
    "banking77": ("uniform", "confusable", "instance"),
    "merchants": ("uniform", "confusable", "instance", "borderline"),
}
DETECTORS = ("cleanlab", "today", "combined", "combined_rank")
METRICS = ("ap", "auroc", "p_at_100", "f1", "precision", "recall")
CACHE = ROOT / "var" / "bench" / "noise"
N_REVIEWS = 100
WEAK_SAMPLE = 0.10


def merchant_arrays(n: int) -> dict[str, Any]:
    """Generated merchants (seed 0, no noise): embeddings, texts, labels, borderline classes."""
    from labeling.synthetic import category_names, generate

    records = generate(n, seed=0, noise=0.0)
    names = sorted(category_names())
    index = {c: i for i, c in enumerate(names)}
    texts = [r.text for r in records]
    digest = hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()[:16]
    path = CACHE / f"{MODEL_NAME}-merchants-{digest}.npy"
    if path.exists():
        X = np.load(path)
    else:
        X = np.asarray(_encode(texts), dtype=np.float32)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(path, X)
    y = np.array([index[r.true_label] for r in records])
    secondary = np.array(
        [-1 if r.secondary_label is None else index[r.secondary_label] for r in records]
    )
    return {"X": X, "y": y, "texts": texts, "secondary": secondary, "k": len(names)}


def banking_data() -> dict[str, Any]:
    data = banking77_arrays()
    texts, _ = load_banking77("train")
    y = data["y_train"]
    return {
        "X": data["X_train"],
        "y": y,
        "texts": texts,
        "secondary": None,
        "k": len(data["names"]),
    }


def inject(data: dict[str, Any], kind: str, rate: float, seed: int) -> np.ndarray:
    """A noisy copy of the true labels with ``round(rate * n)`` (or fewer) rows moved."""
    X, y, k = data["X"], data["y"], data["k"]
    rng = np.random.default_rng(seed)
    n_flip = round(rate * y.size)
    noisy = y.copy()
    if kind == "uniform":
        rows = rng.choice(y.size, n_flip, replace=False)
        noisy[rows] = (y[rows] + rng.integers(1, k, size=n_flip)) % k
    elif kind == "confusable":
        cent = np.vstack([X[y == c].mean(axis=0) for c in range(k)])
        cent /= np.linalg.norm(cent, axis=1, keepdims=True)
        sim = cent @ cent.T
        np.fill_diagonal(sim, -np.inf)
        rows = rng.choice(y.size, n_flip, replace=False)
        noisy[rows] = sim.argmax(axis=1)[y[rows]]
    elif kind == "instance":
        # A weak model (few labels) stands in for a hurried person: the class it most confuses
        # a case with is the wrong label that case gets, and confusing cases get one more often.
        sample = rng.choice(y.size, int(WEAK_SAMPLE * y.size), replace=False)
        weak = LogisticRegression(C=10.0, max_iter=1000).fit(X[sample], y[sample])
        proba = np.zeros((y.size, k))
        proba[:, weak.classes_] = weak.predict_proba(X)
        proba[np.arange(y.size), y] = 0.0
        confused = proba.argmax(axis=1)
        weight = proba.max(axis=1) + 1e-9
        rows = rng.choice(y.size, n_flip, replace=False, p=weight / weight.sum())
        noisy[rows] = confused[rows]
    elif kind == "borderline":
        pool = np.flatnonzero(data["secondary"] >= 0)
        rows = rng.choice(pool, min(n_flip, pool.size), replace=False)
        noisy[rows] = data["secondary"][rows]
    else:
        raise ValueError(kind)
    return noisy


def scores_of(score: np.ndarray, mask: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = float((mask & truth).sum())
    p = tp / max(mask.sum(), 1)
    r = tp / max(truth.sum(), 1)
    top = np.argsort(-score, kind="stable")[:100]
    return {
        "ap": float(average_precision_score(truth, score)),
        "auroc": float(roc_auc_score(truth, score)),
        "p_at_100": float(truth[top].mean()),
        "f1": 2 * p * r / max(p + r, 1e-12),
        "precision": p,
        "recall": r,
        "flagged": int(mask.sum()),
    }


def one_draw(data: dict[str, Any], dataset: str, kind: str, seed: int) -> dict[str, Any]:
    X, y, k, texts = data["X"], data["y"], data["k"], data["texts"]
    with threadpool_limits(1):
        noisy = inject(data, kind, RATE, seed)
        truth = noisy != y
        seconds: dict[str, float] = {}
        t = time.perf_counter()
        p1 = noise.out_of_fold_proba(X, noisy, n_classes=k, random_state=seed)
        seconds["embedding_round1"] = time.perf_counter() - t
        t = time.perf_counter()
        today_mask, p2 = noise.find_label_issues_iterative(
            X, noisy, n_classes=k, pred_probs=p1, rounds=2, filter_by="both", random_state=seed
        )
        seconds["embedding_round2"] = time.perf_counter() - t
        t = time.perf_counter()
        votes = neighbour_label_votes(X, noisy, n_classes=k, random_state=seed, voters=~today_mask)
        seconds["neighbours"] = time.perf_counter() - t
        t = time.perf_counter()
        lexical = lexical_out_of_fold_proba(
            texts, noisy, n_classes=k, random_state=seed, train_mask=~today_mask
        )
        seconds["lexical"] = time.perf_counter() - t
        rows = np.arange(y.size)
        found = {
            "cleanlab": (
                1 - get_label_quality_scores(noisy, p1),
                cleanlab_find_label_issues(noisy, p1, n_jobs=1),
            ),
            "today": (1 - p2[rows, noisy], today_mask),
        }
        # The same steps as views.detect_label_issues, kept apart to time each view.
        detection = combine_views(noisy, [p2, votes, lexical])
        found["combined"] = (detection.score, detection.flagged)
        ranked = combine_views(noisy, [p2, votes, lexical], combine="rank")
        found["combined_rank"] = (ranked.score, ranked.flagged)
        views = {
            name: float(average_precision_score(truth, 1 - p[rows, noisy]))
            for name, p in (("embedding", p2), ("neighbours", votes), ("lexical", lexical))
        }
        result: dict[str, Any] = {
            "dataset": dataset,
            "kind": kind,
            "seed": seed,
            "actual_noise": float(truth.mean()),
            "seconds": seconds,
            "detection": {d: scores_of(s, m, truth) for d, (s, m) in found.items()},
            "view_ap": views,
            "reviews": review_simulation(detection, noisy, truth, k, seed),
            "suggestion_accuracy_flagged": float(
                (detection.suggested[detection.flagged] == y[detection.flagged]).mean()
            ),
        }
    d = result["detection"]
    print(
        f"{dataset} {kind} seed {seed}: AP cleanlab {d['cleanlab']['ap']:.3f} today "
        f"{d['today']['ap']:.3f} combined {d['combined']['ap']:.3f} (rank "
        f"{d['combined_rank']['ap']:.3f}); F1 today {d['today']['f1']:.3f} combined "
        f"{d['combined']['f1']:.3f}; reviews {result['reviews']}",
        flush=True,
    )
    return result


def review_simulation(
    detection: Any, noisy: np.ndarray, truth: np.ndarray, k: int, seed: int
) -> dict[str, float]:
    """100 flagged cases reviewed (the truth as answers); AP of the rest, before and after."""
    issues = np.flatnonzero(detection.flagged)
    rng = np.random.default_rng(seed)
    reviewed = rng.choice(issues, min(N_REVIEWS, issues.size), replace=False)
    rest = np.setdiff1d(issues, reviewed)
    # As the product counts corrections: over the open cases only, each leaving its own out.
    contender = contenders(detection.pred_probs, noisy)
    is_open = np.ones(noisy.size, dtype=bool)
    is_open[reviewed] = False
    proposed = corrections(
        noisy[is_open], contender[is_open], detection.flagged[is_open], n_classes=k
    )
    features = reviewer_features(
        detection.signals,
        noisy,
        n_classes=k,
        contender=contender,
        proposed=proposed,
        counted=detection.flagged & is_open,
    )
    answers = truth[reviewed].astype(int)
    try:
        model, cv_ap = fit_reviewer_model(features[reviewed], answers, seed=seed)
    except noise.NoiseError:
        return {"skipped": 1.0}
    before = float(average_precision_score(truth[rest], detection.score[rest]))
    after = float(average_precision_score(truth[rest], rerank(model, features[rest])))
    return {
        "ap_rest_unsupervised": before,
        "ap_rest_reviewer_model": after,
        "cv_ap": cv_ap,
        "reviewed_wrong_share": float(answers.mean()),
    }


def cost(n: int, dim: int, k: int) -> dict[str, float]:
    """Seconds per view on ``n`` random cases (1 BLAS thread)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, k, n)
    centres = rng.normal(size=(k, dim)).astype(np.float32)
    X = centres[y] + rng.normal(scale=2.0, size=(n, dim)).astype(np.float32)
    words = np.array([f"w{i}" for i in range(5000)])
    texts = [" ".join(words[rng.integers(0, 5000, 12)]) for _ in range(n)]
    out: dict[str, float] = {"n": n}
    with threadpool_limits(1):
        t = time.perf_counter()
        neighbour_label_votes(X, y, n_classes=k)
        out["neighbours"] = time.perf_counter() - t
        t = time.perf_counter()
        lexical_out_of_fold_proba(texts, y, n_classes=k)
        out["lexical"] = time.perf_counter() - t
        # Today's detector: 2 rounds x 5 folds, each an LR on <= 50,000 sampled rows
        # (services/issues.py) then a prediction of its fold; one fit and prediction timed.
        sample = rng.choice(n, min(n, 50_000), replace=False)
        t = time.perf_counter()
        model = LogisticRegression(C=10.0, max_iter=1000).fit(X[sample], y[sample])
        model.predict_proba(X[: n // 5])
        out["today_estimated"] = 10 * (time.perf_counter() - t)
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dataset, kinds in KINDS.items():
        for kind in kinds:
            mine = [r for r in runs if r["dataset"] == dataset and r["kind"] == kind]
            if not mine:
                continue
            mean = {
                det: {m: float(np.mean([r["detection"][det][m] for r in mine])) for m in METRICS}
                for det in DETECTORS
            }
            reviews = [r["reviews"] for r in mine if "cv_ap" in r["reviews"]]
            out[f"{dataset}/{kind}"] = {
                "mean": mean,
                "view_ap": {
                    v: float(np.mean([r["view_ap"][v] for r in mine])) for v in mine[0]["view_ap"]
                },
                "combined_minus_today_ap": mean["combined"]["ap"] - mean["today"]["ap"],
                "combined_minus_cleanlab_ap": mean["combined"]["ap"] - mean["cleanlab"]["ap"],
                "reviews_mean": {
                    key: float(np.mean([r[key] for r in reviews])) for key in reviews[0]
                }
                if reviews
                else {},
                "seconds_mean": {
                    s: float(np.mean([r["seconds"][s] for r in mine])) for s in mine[0]["seconds"]
                },
                "draws": len(mine),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=3, help="noise draws per setting")
    parser.add_argument("--merchants", type=int, default=8000, help="generated merchant cases")
    parser.add_argument("--jobs", type=int, default=2, help="draws run in parallel")
    parser.add_argument("--datasets", default="banking77,merchants")
    parser.add_argument("--cost", action="store_true", help="time each view at 100,000 cases")
    args = parser.parse_args()
    if args.cost:
        figures = cost(100_000, 384, 77)
        print(figures)
        write_result("noise_detection_cost", {"per_100k_cases": figures})
        return
    started = time.perf_counter()
    loaders = {"banking77": banking_data, "merchants": lambda: merchant_arrays(args.merchants)}
    datasets = {name: loaders[name]() for name in args.datasets.split(",")}
    tasks = [
        (name, kind, seed)
        for name in datasets
        for kind in KINDS[name]
        for seed in range(args.draws)
    ]
    runs = Parallel(n_jobs=args.jobs)(
        delayed(one_draw)(datasets[name], name, kind, seed) for name, kind, seed in tasks
    )
    summary = summarise(runs)
    wall = time.perf_counter() - started
    print(f"\n{'setting':<24}{'detector':<15}" + "".join(f"{m:>10}" for m in METRICS))
    for name, s in summary.items():
        for det in DETECTORS:
            row = "".join(f"{s['mean'][det][m]:>10.3f}" for m in METRICS)
            print(f"{name:<24}{det:<15}{row}")
        print(f"{'':<24}views AP {s['view_ap']}; reviews {s['reviews_mean']}")
    print(f"wall time {wall:.0f} s")
    path = write_result(
        "noise_detection",
        {
            "config": {
                "rate": RATE,
                "draws": args.draws,
                "merchants": args.merchants,
                "classifier": "LogisticRegression(C=10), 5-fold stratified out-of-fold",
                "today": "find_label_issues_iterative(rounds=2, filter_by='both')",
                "combined": "views.combine_views(geometric) over today's probabilities, neighbours, lexical",
                "cleanlab": "cleanlab.filter.find_label_issues + rank self_confidence defaults",
                "reviews": f"{N_REVIEWS} random flagged cases answered with the truth",
                "blas_threads": 1,
            },
            "settings": summary,
            "runs": runs,
            "wall_seconds": wall,
        },
    )
    fig, axes = new_figure(1, 2, figsize=(13, 4.5))
    names = list(summary)
    width = 0.2
    for ax, metric in zip(axes, ("ap", "f1"), strict=True):
        for i, det in enumerate(DETECTORS):
            ax.bar(
                np.arange(len(names)) + (i - 1.5) * width,
                [summary[n]["mean"][det][metric] for n in names],
                width,
                label=det,
            )
        ax.set_xticks(np.arange(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set(ylabel=metric.upper(), ylim=(0, 1), title=f"{metric.upper()} at 20% noise")
    axes[0].legend(fontsize=8)
    save_figure(fig, "noise_detection")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
