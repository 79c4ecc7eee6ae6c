"""Embedding throughput and quality: the torch, ONNX int8 and static backends, same run, same texts.

Part 1 (kept from issue 8): our torch encoder against a plain ``SentenceTransformer.encode`` over
Banking77's training texts, (a) as they are and (b) with 30% duplicates. Part 2: sentences/s of
each backend with 1 and 2 threads on the same texts (no cache: every run encodes from scratch),
and the quality each gives: Banking77 logistic-regression test accuracy (C=10) and label-noise
detection F1 at 20% confusable noise (bench/noise_detection.py's injection and the faithful
confident-learning detector; the noisy labels are drawn once from torch's centroids, so every
backend cleans the same labels). Runs alternate backends ``--repeats`` times and keep each best
(least disturbed by other load). Writes bench/results/embedding_speed{,_quick}.{json,png}.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from common import (
    CACHE_DIR,
    cached_embeddings,
    load_banking77,
    new_figure,
    save_figure,
    write_result,
)

from active_learning.ml import noise
from active_learning.ml.embeddings import (
    BACKENDS,
    DEFAULT_MODEL_NAME,
    SentenceTransformerEncoder,
    artifact_build,
    backend_model_name,
    encoder_build,
)
from active_learning.ml.encoder_artifacts import artifact_manifest

THREADS = (1, 2)
MIN_SECONDS = 1.0  # fast backends are timed over repeated calls for at least this long
TARGET_ONNX_SPEEDUP, TARGET_ONNX_LOSS_POINTS, TARGET_STATIC_SPEEDUP = 2.5, 0.5, 25.0


def duplicated(texts: Sequence[str], share: float, seed: int = 0) -> list[str]:
    """Same length as ``texts``; ``share`` of the rows repeat other rows (shuffled)."""
    import random

    rng = random.Random(seed)
    distinct = list(dict.fromkeys(texts))
    n_unique = round(len(texts) * (1 - share))
    kept = rng.sample(distinct, n_unique)
    out = kept + [rng.choice(kept) for _ in range(len(texts) - n_unique)]
    rng.shuffle(out)
    return out


def rate(fn: Callable[[], object], n: int, min_seconds: float = 0.0) -> float:
    """Items per second of ``fn`` (which handles ``n`` items), repeated to ``min_seconds``."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return n * calls / elapsed


def plain_comparison(texts: list[str], repeats: int, threads: int) -> dict[str, Any]:
    """Part 1: SentenceTransformerEncoder against a plain SentenceTransformer.encode."""
    dup_texts = duplicated(texts, 0.30)
    encoder = SentenceTransformerEncoder(num_threads=threads, batch_size=32)
    model = encoder._get_model()  # the same loaded model for both sides
    import torch

    torch.set_num_threads(threads)
    model.encode(texts[:64], show_progress_bar=False)  # warm-up

    def baseline(items: Sequence[str]) -> Callable[[], object]:
        return lambda: model.encode(
            list(items), batch_size=32, normalize_embeddings=True, show_progress_bar=False
        )

    def ours(items: Sequence[str]) -> Callable[[], object]:
        return lambda: encoder.encode(items)  # no cache: every run encodes from scratch

    results = {}
    for label, items in (("unique", texts), ("dup30", dup_texts)):
        base_rates, our_rates = [], []
        for _ in range(repeats):
            base_rates.append(rate(baseline(items), len(items)))
            our_rates.append(rate(ours(items), len(items)))
        results[label] = {
            "n_texts": len(items),
            "n_distinct": len(set(items)),
            "baseline_sentences_per_s": max(base_rates),
            "ours_sentences_per_s": max(our_rates),
            "ratio": max(our_rates) / max(base_rates),
            "all_baseline": base_rates,
            "all_ours": our_rates,
        }
        r = results[label]
        print(
            f"{label:7s} n={r['n_texts']} distinct={r['n_distinct']}  "
            f"baseline {r['baseline_sentences_per_s']:.0f}/s  ours {r['ours_sentences_per_s']:.0f}/s"
            f"  ratio {r['ratio']:.3f}",
            flush=True,
        )
    return results


def build_artifacts(artifacts_dir: Path) -> dict[str, Any]:
    """Build (or reuse) each backend's artefact; returns their manifests (with build seconds)."""
    built = {}
    for backend in BACKENDS:
        started = time.perf_counter()
        path = artifact_build(backend, artifacts_dir=artifacts_dir)
        if path is not None:
            built[backend] = {
                **(artifact_manifest(path) or {}),
                "this_run_seconds": time.perf_counter() - started,
            }
            print(f"artefact {backend}: {built[backend]}", flush=True)
    return built


def speeds(texts: list[str], artifacts_dir: Path, repeats: int) -> dict[str, dict[str, Any]]:
    """Sentences/s per backend and thread count, best of ``repeats`` interleaved runs."""
    out: dict[str, dict[str, Any]] = {}
    for threads in THREADS:
        encoders = {
            b: encoder_build(
                b,
                artifacts_dir=artifacts_dir,
                model_name=backend_model_name(DEFAULT_MODEL_NAME, b),
                num_threads=threads,
            )
            for b in BACKENDS
        }
        for encoder in encoders.values():
            encoder.encode(texts[:64])  # load + warm-up
        runs: dict[str, list[float]] = {b: [] for b in BACKENDS}
        for _ in range(repeats):
            for b, encoder in encoders.items():
                runs[b].append(
                    rate(lambda e=encoder: e.encode(texts), len(texts), min_seconds=MIN_SECONDS)
                )
        for b in BACKENDS:
            out.setdefault(b, {})[str(threads)] = {"best": max(runs[b]), "all": runs[b]}
            print(f"{b:10s} {threads} thread(s): {max(runs[b]):8.0f} sentences/s", flush=True)
    return out


def quality(
    artifacts_dir: Path, train_limit: int | None, noise_seeds: int
) -> dict[str, dict[str, Any]]:
    """Banking77 LR test accuracy and confusable-noise detection F1 per backend."""
    from noise_detection import inject, prf, test_accuracy
    from threadpoolctl import threadpool_limits

    tr_text, tr_lab = load_banking77("train")
    te_text, te_lab = load_banking77("test")
    if train_limit:
        pick = np.random.default_rng(0).permutation(len(tr_text))[:train_limit]
        tr_text, tr_lab = [tr_text[i] for i in pick], [tr_lab[i] for i in pick]
    names = sorted(set(tr_lab) | set(te_lab))
    index = {n: i for i, n in enumerate(names)}
    y, yt = np.array([index[n] for n in tr_lab]), np.array([index[n] for n in te_lab])
    vectors = {}
    for b in BACKENDS:
        name = backend_model_name(DEFAULT_MODEL_NAME, b)
        encoder = encoder_build(b, artifacts_dir=artifacts_dir, model_name=name, num_threads=2)
        vectors[b] = (
            cached_embeddings(tr_text, name, encoder.encode),
            cached_embeddings(te_text, name, encoder.encode),
        )
    noisy_sets = [
        inject(y, vectors["torch"][0], "confusable", 0.20, seed) for seed in range(noise_seeds)
    ]
    out: dict[str, dict[str, Any]] = {}
    with threadpool_limits(1):
        for b, (X, Xt) in vectors.items():
            f1s = []
            for seed, noisy in enumerate(noisy_sets):
                proba = noise.out_of_fold_proba(X, noisy, n_classes=len(names), random_state=seed)
                f1s.append(prf(noise.find_label_issues(noisy, proba), noisy != y)["f1"])
            out[b] = {
                "dimension": int(X.shape[1]),
                "test_accuracy": test_accuracy(X, y, Xt, yt),
                "noise_f1_confusable_20": float(np.mean(f1s)),
                "noise_f1_runs": f1s,
            }
            print(
                f"{b:10s} accuracy {out[b]['test_accuracy']:.4f}  "
                f"noise F1 {out[b]['noise_f1_confusable_20']:.4f}",
                flush=True,
            )
    if "onnx-int8" in vectors:
        cosine = np.sum(vectors["onnx-int8"][1] * vectors["torch"][1], axis=1)
        out["onnx-int8"]["cosine_to_torch_test"] = {
            "mean": float(cosine.mean()),
            "p1": float(np.percentile(cosine, 1)),
        }
    return out


def summary(speed: dict[str, Any], qual: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bool]]:
    """Speed-ups over torch at equal threads and accuracy losses in points; the target checks."""
    rows: dict[str, Any] = {}
    for b in BACKENDS:
        rows[b] = {
            "speedup": {t: speed[b][t]["best"] / speed["torch"][t]["best"] for t in speed[b]},
            "accuracy_loss_points": 100
            * (qual["torch"]["test_accuracy"] - qual[b]["test_accuracy"]),
            "noise_f1_loss_points": 100
            * (qual["torch"]["noise_f1_confusable_20"] - qual[b]["noise_f1_confusable_20"]),
        }
    checks = {
        f"onnx_speedup_ge_{TARGET_ONNX_SPEEDUP}_at_{t}_threads": rows["onnx-int8"]["speedup"][t]
        >= TARGET_ONNX_SPEEDUP
        for t in rows["onnx-int8"]["speedup"]
    }
    checks[f"onnx_accuracy_loss_le_{TARGET_ONNX_LOSS_POINTS}_points"] = (
        rows["onnx-int8"]["accuracy_loss_points"] <= TARGET_ONNX_LOSS_POINTS
    )
    for t in rows["static"]["speedup"]:
        checks[f"static_speedup_ge_{TARGET_STATIC_SPEEDUP:.0f}_at_{t}_threads"] = (
            rows["static"]["speedup"][t] >= TARGET_STATIC_SPEEDUP
        )
    return rows, checks


def plot(name: str, speed: dict[str, Any], qual: dict[str, Any]) -> None:
    fig, (left, right) = new_figure(1, 2, figsize=(9, 3.4))
    width = 0.38
    for i, t in enumerate(str(t) for t in THREADS):
        left.bar(
            [j + (i - 0.5) * width for j in range(len(BACKENDS))],
            [speed[b][t]["best"] for b in BACKENDS],
            width,
            label=f"{t} thread{'s' if t != '1' else ''}",
        )
    left.set_yscale("log")
    left.set_xticks(range(len(BACKENDS)), list(BACKENDS))
    left.set_ylabel("sentences / s (log)")
    left.set_title("Throughput, same texts", fontsize=9)
    left.legend(fontsize=8)
    for i, (key, label) in enumerate(
        (("test_accuracy", "Banking77 LR accuracy"), ("noise_f1_confusable_20", "noise F1 (20%)"))
    ):
        right.bar(
            [j + (i - 0.5) * width for j in range(len(BACKENDS))],
            [qual[b][key] for b in BACKENDS],
            width,
            label=label,
        )
    right.set_ylim(0.5, 1.0)
    right.set_xticks(range(len(BACKENDS)), list(BACKENDS))
    right.set_title("Quality per backend", fontsize=9)
    right.legend(fontsize=8, loc="lower left")
    save_figure(fig, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="threads of part 1")
    parser.add_argument("--limit", type=int, default=None, help="time on the first N texts")
    parser.add_argument("--noise-seeds", type=int, default=2)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2,000 texts, 1 repeat, quality on 3,000 training texts, 1 noise draw",
    )
    parser.add_argument("--artifacts", type=Path, default=CACHE_DIR / "encoders")
    args = parser.parse_args()
    limit, repeats, train_limit, seeds = args.limit, args.repeats, None, args.noise_seeds
    if args.quick:
        limit, repeats, train_limit, seeds = limit or 2000, 1, 3000, 1

    texts, _ = load_banking77("train")
    texts = texts[:limit] if limit else texts
    print("== part 1: our torch encoder vs plain SentenceTransformer.encode", flush=True)
    results = plain_comparison(texts, repeats, args.threads)
    checks = {"unique_ratio_ge_0.95": results["unique"]["ratio"] >= 0.95,
              "dup30_ratio_ge_1.3": results["dup30"]["ratio"] >= 1.3}  # fmt: skip

    print("== part 2: backends", flush=True)
    artefacts = build_artifacts(args.artifacts)
    speed = speeds(texts, args.artifacts, repeats)
    qual = quality(args.artifacts, train_limit, seeds)
    rows, backend_checks = summary(speed, qual)
    checks.update(backend_checks)

    print(f"\n{'backend':<11}{'dim':>5}{'1 thr/s':>10}{'2 thr/s':>10}{'x torch':>14}"
          f"{'accuracy':>10}{'loss pt':>9}{'noise F1':>10}")  # fmt: skip
    for b in BACKENDS:
        s, q, r = speed[b], qual[b], rows[b]
        ratio = " / ".join(f"{r['speedup'][t]:.1f}" for t in ("1", "2"))
        print(
            f"{b:<11}{q['dimension']:>5}{s['1']['best']:>10.0f}{s['2']['best']:>10.0f}{ratio:>14}"
            f"{q['test_accuracy']:>10.4f}{r['accuracy_loss_points']:>9.2f}"
            f"{q['noise_f1_confusable_20']:>10.4f}"
        )
    print("checks:", checks)
    name = "embedding_speed_quick" if args.quick else "embedding_speed"
    write_result(
        name,
        {
            "threads": args.threads,
            "n_texts_timed": len(texts),
            "repeats": repeats,
            "quality_train_limit": train_limit,
            "noise_seeds": seeds,
            "results": results,
            "artefacts": artefacts,
            "backends": {"speed": speed, "quality": qual, "relative_to_torch": rows},
            "checks": checks,
        },
    )
    plot(name, speed, qual)


if __name__ == "__main__":
    main()
