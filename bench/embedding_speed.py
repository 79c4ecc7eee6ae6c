"""Embedding throughput: our encoder against a plain ``SentenceTransformer.encode``, same run.

Sentences/second over Banking77's training texts, (a) as they are and (b) with 30% of them
replaced by duplicates of others. Runs alternate baseline/ours ``--repeats`` times and keep the
best of each (least disturbed by other load). Writes bench/results/embedding_speed.{json,png}.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence

from common import load_banking77, new_figure, save_figure, write_result

from active_learning.ml.embeddings import SentenceTransformerEncoder


def duplicated(texts: Sequence[str], share: float, seed: int = 0) -> list[str]:
    """Same length as ``texts``; ``share`` of the rows repeat other rows (shuffled)."""
    rng = random.Random(seed)
    distinct = list(dict.fromkeys(texts))
    n_unique = round(len(texts) * (1 - share))
    kept = rng.sample(distinct, n_unique)
    out = kept + [rng.choice(kept) for _ in range(len(texts) - n_unique)]
    rng.shuffle(out)
    return out


def rate(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="use the first N texts")
    args = parser.parse_args()

    texts, _ = load_banking77("train")
    texts = texts[: args.limit] if args.limit else texts
    dup_texts = duplicated(texts, 0.30)
    encoder = SentenceTransformerEncoder(num_threads=args.threads, batch_size=32)
    model = encoder._get_model()  # the same loaded model for both sides
    import torch

    torch.set_num_threads(args.threads)
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
        for _ in range(args.repeats):
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
            f"  ratio {r['ratio']:.3f}"
        )
    checks = {"unique_ratio_ge_0.95": results["unique"]["ratio"] >= 0.95,
              "dup30_ratio_ge_1.3": results["dup30"]["ratio"] >= 1.3}  # fmt: skip
    print("checks:", checks)
    write_result("embedding_speed", {"threads": args.threads, "results": results, "checks": checks})

    fig, ax = new_figure(figsize=(5, 3.2))
    labels = list(results)
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [results[k]["baseline_sentences_per_s"] for k in labels], 0.4,
           label="SentenceTransformer.encode")  # fmt: skip
    ax.bar([i + 0.2 for i in x], [results[k]["ours_sentences_per_s"] for k in labels], 0.4,
           label="SentenceTransformerEncoder")  # fmt: skip
    ax.set_xticks(list(x), ["all distinct", "30% duplicates"])
    ax.set_ylabel("sentences / s")
    ax.legend(fontsize=8)
    save_figure(fig, "embedding_speed")


if __name__ == "__main__":
    main()
