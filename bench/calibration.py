"""Classifiers x calibration methods on Banking77 (train on train, measure on test).

For each pair: accuracy, macro-F1, ECE (15 bins), MCE, Brier, fit seconds; then per-class
operating points at 0.95 and 0.99 precision (how many classes reach the target with proof, by
observed precision only, median recall, labels still needed). The baseline is the same classifier
uncalibrated, in the same run (ECE ratio). BLAS runs at one thread. Writes
bench/results/calibration.{json,png}; embeddings are cached in bench/results/.cache/.
"""

from __future__ import annotations

import argparse
import statistics
import warnings

from common import (
    cached_embeddings,
    load_banking77,
    new_figure,
    save_figure,
    timer,
    write_result,
)
from threadpoolctl import threadpool_limits

from active_learning.ml.calibration import calibration_summary
from active_learning.ml.classifiers import make_classifier
from active_learning.ml.embeddings import SentenceTransformerEncoder
from active_learning.ml.metrics import evaluate

PAIRS = [
    ("logreg", None), ("logreg", "temperature"), ("logreg", "sigmoid"), ("logreg", "isotonic"),
    ("linear_svm", None), ("linear_svm", "temperature"), ("linear_svm", "sigmoid"),
    ("mlp", None), ("mlp", "temperature"),
]  # fmt: skip
TARGETS = (0.95, 0.99)


def summarize_points(points: list) -> dict:
    proven = [p for p in points if p.enough_evidence]
    observed = [p for p in points if p.threshold is not None]
    needed = [p.more_labels_needed for p in points if p.more_labels_needed]
    return {
        "n_classes": len(points),
        "n_proven": len(proven),
        "n_observed": len(observed),
        "median_recall_proven": statistics.median([p.recall for p in proven]) if proven else None,
        "median_recall_observed": (
            statistics.median([p.recall or 0.0 for p in observed]) if observed else None
        ),
        "median_more_labels_needed": statistics.median(needed) if needed else None,
        "n_unreachable": sum(p.threshold is None for p in points),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-bootstrap", type=int, default=500)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    train_texts, y_train = load_banking77("train")
    test_texts, y_test = load_banking77("test")
    encoder = SentenceTransformerEncoder(num_threads=2)
    X_train = cached_embeddings(train_texts, encoder.model_name, encoder.encode)
    X_test = cached_embeddings(test_texts, encoder.model_name, encoder.encode)
    classes = sorted(set(y_train))
    rows, curves = [], {}
    with threadpool_limits(limits=1):
        for kind, method in PAIRS:
            model = make_classifier(kind, classes=classes, calibration=method, random_state=0)
            with timer() as t:
                model.fit(X_train, y_train)
            proba = model.predict_proba(X_test)
            summary = calibration_summary(y_test, proba, classes=classes)
            row = {
                "classifier": kind,
                "calibration": method or "none",
                "fit_seconds": t["seconds"],
                "ece": summary.ece,
                "mce": summary.mce,
                "brier": summary.brier,
            }
            inner = model.estimator_
            row["fallback_reason"] = getattr(inner, "fallback_reason_", None)
            if hasattr(inner, "C_"):  # uncalibrated TunedLogisticRegression
                row["C"] = inner.C_
            elif hasattr(getattr(inner, "estimator_", None), "calibrated_classifiers_"):
                fitted = inner.estimator_.calibrated_classifiers_[0].estimator
                row["C"] = getattr(fitted, "C", None)
            else:  # one model beside its own temperature (a class with one label)
                row["C"] = getattr(getattr(inner, "estimator_", None), "C", None)
            for target in TARGETS:
                report = evaluate(y_test, proba, classes=classes, target_precision=target,
                                  n_bootstrap=args.n_bootstrap, random_state=0)  # fmt: skip
                row["accuracy"], row["macro_f1"] = report.accuracy, report.macro_f1
                row[f"at_{target}"] = summarize_points(report.class_operating_points)
                if kind == "logreg" and method == "temperature":
                    row[f"points_{target}"] = [p.to_dict() for p in report.class_operating_points]
            rows.append(row)
            curves[f"{kind}/{method or 'none'}"] = summary.bins
            a95, a99 = row["at_0.95"], row["at_0.99"]
            print(
                f"{kind:10s} {row['calibration']:11s} acc {row['accuracy']:.4f} "
                f"F1 {row['macro_f1']:.4f} ECE {row['ece']:.4f} MCE {row['mce']:.3f} "
                f"Brier {row['brier']:.4f} fit {row['fit_seconds']:.1f}s | "
                f"0.95: proven {a95['n_proven']}, observed {a95['n_observed']}, "
                f"med.recall {a95['median_recall_observed']} | "
                f"0.99: proven {a99['n_proven']}, observed {a99['n_observed']}, "
                f"med.recall {a99['median_recall_observed']}",
                flush=True,
            )
    base = {r["classifier"]: r["ece"] for r in rows if r["calibration"] == "none"}
    for r in rows:
        r["ece_ratio_vs_uncalibrated"] = r["ece"] / base[r["classifier"]]
        print(f"{r['classifier']:10s} {r['calibration']:11s} ECE ratio vs none "
              f"{r['ece_ratio_vs_uncalibrated']:.3f}")  # fmt: skip
    write_result("calibration", {"n_train": len(y_train), "n_test": len(y_test), "rows": rows})

    fig, ax = new_figure(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    for name in ("logreg/none", "logreg/temperature", "logreg/isotonic"):
        bins = [b for b in curves[name] if b.count]
        ax.plot([b.mean_confidence for b in bins], [b.accuracy for b in bins], marker="o",
                label=name)  # fmt: skip
    ax.set_xlabel("mean confidence (top label)")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability on Banking77 test")
    ax.legend()
    save_figure(fig, "calibration")


if __name__ == "__main__":
    main()
