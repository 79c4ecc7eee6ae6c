"""Label-error detection on Banking77 with injected noise: ours (faithful, improved) vs cleanlab.

Noise: 10% and 20% uniform (a random other class) and 20% confusable (the nearest class by
embedding centroid) injected into the training labels. All detectors read the same out-of-fold
probabilities (LogisticRegression C=10, 5 folds, BLAS at 1 thread). Also reports test accuracy
trained on noisy, cleaned and clean labels. Writes ``bench/results/noise_detection.json`` / ``.png``.
cleanlab (AGPL-3.0) is only a baseline here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from al_curve import banking77_arrays
from cleanlab.filter import find_label_issues as cleanlab_find_label_issues
from common import new_figure, save_figure, write_result
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from threadpoolctl import threadpool_limits

from active_learning.ml import noise

SETTINGS = (("uniform", 0.10), ("uniform", 0.20), ("confusable", 0.20))
DETECTORS = ("faithful", "improved", "cleanlab")


def inject(y: np.ndarray, X: np.ndarray, kind: str, rate: float, seed: int) -> np.ndarray:
    """Noisy copy of ``y``: ``rate`` of rows moved to a random other class or the nearest class."""
    rng = np.random.default_rng(seed)
    k = int(y.max()) + 1
    flip = rng.random(y.size) < rate
    noisy = y.copy()
    if kind == "uniform":
        shift = rng.integers(1, k, size=y.size)
        noisy[flip] = (y[flip] + shift[flip]) % k
    else:
        cent = np.vstack([X[y == c].mean(axis=0) for c in range(k)])
        cent /= np.linalg.norm(cent, axis=1, keepdims=True)
        sim = cent @ cent.T
        np.fill_diagonal(sim, -np.inf)
        noisy[flip] = sim.argmax(axis=1)[y[flip]]
    return noisy


def prf(mask: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = float((mask & truth).sum())
    p = tp / max(mask.sum(), 1)
    r = tp / max(truth.sum(), 1)
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / max(p + r, 1e-12),
        "flagged": int(mask.sum()),
    }


def test_accuracy(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray) -> float:
    model = LogisticRegression(C=10.0, max_iter=2000).fit(X, y)
    return float(accuracy_score(yt, model.predict(Xt)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="noise draws per setting")
    parser.add_argument("--quick", action="store_true", help="one noise draw")
    args = parser.parse_args()
    seeds = 1 if args.quick else args.seeds
    started = time.perf_counter()
    data = banking77_arrays()
    X, y, Xt, yt = data["X_train"], data["y_train"], data["X_test"], data["y_test"]
    k = len(data["names"])
    results: dict[str, Any] = {}
    with threadpool_limits(1):
        clean_acc = test_accuracy(X, y, Xt, yt)
        for kind, rate in SETTINGS:
            name = f"{kind}_{int(rate * 100)}"
            rows = []
            for seed in range(seeds):
                noisy = inject(y, X, kind, rate, seed)
                truth = noisy != y
                t = time.perf_counter()
                proba = noise.out_of_fold_proba(X, noisy, n_classes=k, random_state=seed)
                t_oof = time.perf_counter() - t
                masks = {
                    "faithful": noise.find_label_issues(noisy, proba),
                    "cleanlab": cleanlab_find_label_issues(noisy, proba, n_jobs=1),
                }
                t = time.perf_counter()
                masks["improved"], _ = noise.find_label_issues_iterative(
                    X, noisy, n_classes=k, pred_probs=proba, rounds=2, random_state=seed
                )
                t_improved = time.perf_counter() - t
                jac = float(
                    (masks["faithful"] & masks["cleanlab"]).sum()
                    / max((masks["faithful"] | masks["cleanlab"]).sum(), 1)
                )
                row: dict[str, Any] = {
                    "seed": seed,
                    "actual_noise": float(truth.mean()),
                    "jaccard_faithful_cleanlab": jac,
                    "seconds": {"oof": t_oof, "improved_extra_round": t_improved},
                    "detection": {d: prf(masks[d], truth) for d in DETECTORS},
                    "test_accuracy": {
                        "noisy": test_accuracy(X, noisy, Xt, yt),
                        "cleaned_faithful": test_accuracy(
                            X[~masks["faithful"]], noisy[~masks["faithful"]], Xt, yt
                        ),
                        "cleaned_improved": test_accuracy(
                            X[~masks["improved"]], noisy[~masks["improved"]], Xt, yt
                        ),
                        "clean": clean_acc,
                    },
                }
                rows.append(row)
                d = row["detection"]
                print(
                    f"{name} seed {seed}: F1 faithful {d['faithful']['f1']:.3f} improved {d['improved']['f1']:.3f} "
                    f"cleanlab {d['cleanlab']['f1']:.3f} (jaccard {jac:.3f})",
                    flush=True,
                )
            mean = {
                det: {
                    m: float(np.mean([r["detection"][det][m] for r in rows]))
                    for m in ("precision", "recall", "f1")
                }
                for det in DETECTORS
            }
            acc = {
                a: float(np.mean([r["test_accuracy"][a] for r in rows]))
                for a in rows[0]["test_accuracy"]
            }
            results[name] = {
                "mean": mean,
                "test_accuracy_mean": acc,
                "faithful_over_cleanlab_f1": mean["faithful"]["f1"] / mean["cleanlab"]["f1"],
                "improved_minus_cleanlab_f1": mean["improved"]["f1"] - mean["cleanlab"]["f1"],
                "jaccard_faithful_cleanlab_mean": float(
                    np.mean([r["jaccard_faithful_cleanlab"] for r in rows])
                ),
                "runs": rows,
            }
    wall = time.perf_counter() - started
    print(
        f"\n{'setting':<15}{'detector':<10}{'P':>7}{'R':>7}{'F1':>7}   test acc: noisy / cleaned(f) / cleaned(i) / clean"
    )
    for name, r in results.items():
        for det in DETECTORS:
            m = r["mean"][det]
            tail = ""
            if det == "faithful":
                a = r["test_accuracy_mean"]
                tail = f"   {a['noisy']:.3f} / {a['cleaned_faithful']:.3f} / {a['cleaned_improved']:.3f} / {a['clean']:.3f}"
            print(
                f"{name:<15}{det:<10}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}{tail}"
            )
        print(
            f"{'':<15}faithful/cleanlab F1 {r['faithful_over_cleanlab_f1']:.3f}; "
            f"improved - cleanlab F1 {r['improved_minus_cleanlab_f1']:+.3f}"
        )
    print(f"wall time {wall:.0f} s")
    name = "noise_detection_quick" if args.quick else "noise_detection"
    path = write_result(
        name,
        {
            "config": {
                "noise_seeds": seeds,
                "classifier": "LogisticRegression(C=10), 5-fold stratified out-of-fold",
                "faithful": "find_label_issues(filter_by='prune_by_noise_rate')",
                "improved": "find_label_issues_iterative(rounds=2)",
                "cleanlab": "cleanlab.filter.find_label_issues defaults",
                "blas_threads": 1,
            },
            "settings": results,
            "wall_seconds": wall,
        },
    )
    fig, ax = new_figure(figsize=(8, 4.5))
    names = list(results)
    width = 0.27
    for i, det in enumerate(DETECTORS):
        ax.bar(
            np.arange(len(names)) + (i - 1) * width,
            [results[n]["mean"][det]["f1"] for n in names],
            width,
            label=det,
        )
    ax.set_xticks(np.arange(len(names)), names)
    ax.set(ylabel="F1 of the flagged set", ylim=(0, 1), title="Banking77 label-error detection")
    ax.legend()
    save_figure(fig, name)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
