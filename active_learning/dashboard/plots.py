"""The dashboard's plots, drawn with matplotlib's Agg backend from the same data as their tables.

Each function takes the panel's list of dicts and returns PNG bytes. matplotlib is imported on
first draw only (a cached plot never loads it).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

WIDTH, HEIGHT, DPI = 6.4, 4.0, 100
BLUE, ORANGE, GREY = "#1f5fa8", "#c2571a", "#888888"


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    return fig, fig.add_subplot()


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _errors(values: list[float], cis: list[Any]) -> list[list[float]]:
    low = [v - ci[0] if ci else 0.0 for v, ci in zip(values, cis, strict=True)]
    high = [ci[1] - v if ci else 0.0 for v, ci in zip(values, cis, strict=True)]
    return [[max(0.0, x) for x in low], [max(0.0, x) for x in high]]


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", color=GREY, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def learning_curve(points: list[dict[str, Any]]) -> bytes:
    """Evaluation macro-F1 and prohibited-tier recall (at the target precision) per version,
    against the analysts' labels it was trained on, with 95% intervals."""
    fig, ax = _figure()
    if not points:
        _empty(ax, "no version measured on evaluation labels yet")
        return _png(fig)
    f1 = [p for p in points if p["macro_f1"] is not None]
    if f1:
        values = [p["macro_f1"] for p in f1]
        ax.errorbar(
            [p["labels"] for p in f1], values, yerr=_errors(values, [p["macro_f1_ci"] for p in f1]),
            marker="o", color=BLUE, capsize=3, label="macro-F1",
        )  # fmt: skip
    recall = [p for p in points if p["recall"] is not None]
    if recall:
        values = [p["recall"] for p in recall]
        ax.errorbar(
            [p["labels"] for p in recall], values,
            yerr=_errors(values, [p["recall_ci"] for p in recall]),
            marker="s", color=ORANGE, capsize=3, linestyle="--",
            label="prohibited recall at target precision",
        )  # fmt: skip
    for p in points:
        if p["macro_f1"] is not None:
            ax.annotate(
                f"v{p['number']}", (p["labels"], p["macro_f1"]), textcoords="offset points",
                xytext=(0, 6), ha="center", fontsize=7, color=GREY,
            )  # fmt: skip
    ax.set_xlabel("analysts' labels in training")
    ax.set_ylabel("on evaluation labels")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def reliability(data: dict[str, Any]) -> bytes:
    """Accuracy against mean confidence per confidence bin; the diagonal is perfect calibration."""
    fig, ax = _figure()
    bins = data.get("bins") or []
    if not bins:
        _empty(ax, "no champion predictions on evaluation labels yet")
        return _png(fig)
    ax.plot([0, 1], [0, 1], color=GREY, linestyle=":", label="perfectly calibrated")
    ax.bar(
        [(b["low"] + b["high"]) / 2 for b in bins], [b["accuracy"] for b in bins],
        width=[b["high"] - b["low"] for b in bins], color=BLUE, alpha=0.6,
        edgecolor="white", label="accuracy in bin",
    )  # fmt: skip
    ax.plot(
        [b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
        color=ORANGE, linestyle="none", label="mean confidence",
    )  # fmt: skip
    ece = data.get("ece")
    ax.set_title(f"ECE {ece:.3f} on {data.get('n', 0)} evaluation labels" if ece else "")
    ax.set_xlabel("confidence of the predicted class")
    ax.set_ylabel("share correct")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def class_points(rows: list[dict[str, Any]]) -> bytes:
    """Precision and recall of each class at its operating point, with 95% intervals; hollow
    markers where the precision is not proven (not enough evidence)."""
    fig, ax = _figure()
    rows = [r for r in rows if r["recall"] is not None or r["precision"] is not None]
    if not rows:
        _empty(ax, "no operating points measured yet")
        return _png(fig)
    fig.set_size_inches(WIDTH, max(HEIGHT, 0.32 * len(rows) + 1.2))
    ys = list(range(len(rows)))
    for series, color, offset, marker in (
        ("precision", BLUE, -0.15, "o"),
        ("recall", ORANGE, 0.15, "s"),
    ):
        for y, r in zip(ys, rows, strict=True):
            value, ci = r[series], r[f"{series}_ci"]
            if value is None:
                continue
            err = _errors([value], [ci])
            ax.errorbar(
                [value], [y + offset], xerr=err, marker=marker, color=color, capsize=2,
                markerfacecolor=color if r["enough"] else "white",
                label=series if y == next(i for i, q in enumerate(rows) if q[series] is not None) else None,
            )  # fmt: skip
    ax.set_yticks(ys)
    ax.set_yticklabels([r["name"] + ("" if r["enough"] else " *") for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("at the threshold reaching the target precision (* not enough evidence)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)


def confusions(data: dict[str, Any]) -> bytes:
    """The most frequent (true -> predicted) mistakes of the champion on evaluation labels."""
    fig, ax = _figure()
    rows = data.get("confusions") or []
    if not rows:
        _empty(ax, "no confusions on evaluation labels")
        return _png(fig)
    labels = [f"{r['truth']} → {r['predicted']}" for r in rows]
    ax.barh(range(len(rows)), [100 * r["share"] for r in rows], color=BLUE)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of evaluation labels (%), true → predicted")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


DRAW: dict[str, Callable[[Any], bytes]] = {
    "learning-curve": learning_curve,
    "reliability": reliability,
    "class-points": class_points,
    "confusions": confusions,
}
