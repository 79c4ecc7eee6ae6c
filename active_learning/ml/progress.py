"""Progress figures of a labeling project: is more labelling still paying? (issue 17).

Pure numpy, no Django. Vocabulary: a *version* here is one champion in promotion order; its
*stop-set predictions* are the predicted class ids of the fixed random stop set (aligned over
versions: same cases, same order); *labels* are the analysts' labels it was trained on; its
*macro-F1* is measured on the evaluation labels, with a 95% interval. Also: the reliability
table of a model on evaluation labels, its most frequent confusions, and how many labels would
narrow a recall interval to a wanted width.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

STABLE_SHARE = 0.01  # fewer than 1% of stop-set predictions changed ...
STABLE_VERSIONS = 3  # ... across the last three champions
Z95 = 1.959963984540054
GAIN_PER = 100  # the gain is reported per 100 labels

SENTENCE_STOP = (
    "The model has changed less than 1% of its predictions over the last three versions "
    "({changed} of the stop set), and the gain in evaluation macro-F1 per 100 labels "
    "({gain}) is indistinguishable from 0: further labels are unlikely to help much."
)
SENTENCE_FEW = (
    "Not enough champions yet: the signal needs {needed} with stop-set predictions ({have} so far)."
)
SENTENCE_CHANGING = (
    "Keep labelling: {changed} of the stop set's predictions changed over the last three "
    "champions (the signal waits for less than 1%)."
)
SENTENCE_GAINING = (
    "Keep labelling: predictions are stable ({changed} of the stop set changed over the last "
    "three champions), but evaluation macro-F1 still gains {gain} per 100 labels."
)
SENTENCE_NO_GAIN = (
    "Predictions are stable ({changed} of the stop set changed over the last three champions), "
    "but the gain per 100 labels cannot be measured yet ({why})."
)


def changed_share(predictions: Sequence[Any]) -> float | None:
    """Share of cases whose predicted class is not the same in every one of `predictions`.

    Parameters
    ----------
    predictions : sequence of array-like of shape (n_cases,)
        Each version's predicted class ids for the same cases in the same order.

    Returns
    -------
    float in [0, 1], or None with fewer than two versions or no cases.
    """
    if len(predictions) < 2:
        return None
    stacked = np.vstack([np.asarray(p) for p in predictions])
    if stacked.shape[1] == 0:
        return None
    same = np.all(stacked == stacked[0], axis=0)
    return float(1.0 - same.mean())


@dataclass(frozen=True)
class Gain:
    """Gain in macro-F1 per 100 labels between two versions, with a 95% interval."""

    per_100: float
    low: float
    high: float
    labels: int  # labels added between the two versions

    @property
    def includes_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


def _se(ci: tuple[float, float] | None) -> float | None:
    if ci is None:
        return None
    return max(0.0, (ci[1] - ci[0]) / (2 * Z95))


def gain_per_100(
    *,
    first_f1: float,
    first_ci: tuple[float, float] | None,
    first_labels: int,
    last_f1: float,
    last_ci: tuple[float, float] | None,
    last_labels: int,
) -> Gain | None:
    """(last - first) macro-F1 per 100 labels; the interval treats both estimates as independent
    normals whose standard errors are read off their 95% intervals (each measured on its own
    evaluation labels; their overlap makes this interval conservative). None when no label was
    added or an interval is missing."""
    added = int(last_labels) - int(first_labels)
    se_first, se_last = _se(first_ci), _se(last_ci)
    if added <= 0 or se_first is None or se_last is None:
        return None
    scale = GAIN_PER / added
    gain = (last_f1 - first_f1) * scale
    half = Z95 * math.hypot(se_first, se_last) * scale
    return Gain(per_100=gain, low=gain - half, high=gain + half, labels=added)


@dataclass(frozen=True)
class VersionFacts:
    """One champion as the stopping signal reads it (promotion order)."""

    number: int
    labels: int
    macro_f1: float | None
    macro_f1_ci: tuple[float, float] | None
    stop_predictions: Any = None  # array of predicted class ids on the stop set, or None


@dataclass(frozen=True)
class StoppingSignal:
    """Whether further labels are unlikely to help: `stop` with its sentence and figures.

    `changes` are the consecutive champions' stop-set change shares (oldest pair first, None
    where a pair lacks stop-set predictions); `changed` the share changed across the last three.
    """

    stop: bool
    sentence: str
    changes: tuple[tuple[int, int, float | None], ...]
    changed: float | None
    gain: Gain | None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _gain_text(gain: Gain) -> str:
    return f"{gain.per_100:+.4f}, 95% interval {gain.low:+.4f} to {gain.high:+.4f}"


def stopping_signal(versions: Sequence[VersionFacts]) -> StoppingSignal:
    """The issue's criterion on champions in promotion order.

    Stop once fewer than STABLE_SHARE of the stop set's predictions changed across the last
    STABLE_VERSIONS champions (a case counts as changed when its class differs in any of them)
    and the 95% interval of the macro-F1 gain per 100 labels between the first and the last of
    them includes 0.
    """
    changes = []
    for older, newer in itertools.pairwise(versions):
        pair = [older.stop_predictions, newer.stop_predictions]
        share = None if any(p is None for p in pair) else changed_share(pair)
        changes.append((older.number, newer.number, share))
    window = list(versions[-STABLE_VERSIONS:])
    usable = [v for v in window if v.stop_predictions is not None]
    if len(versions) < STABLE_VERSIONS or len(usable) < STABLE_VERSIONS:
        have = sum(1 for v in versions if v.stop_predictions is not None)
        sentence = SENTENCE_FEW.format(needed=STABLE_VERSIONS, have=have)
        return StoppingSignal(False, sentence, tuple(changes), None, None)
    changed = changed_share([v.stop_predictions for v in window])
    first, last = window[0], window[-1]
    gain = None
    if first.macro_f1 is not None and last.macro_f1 is not None:
        gain = gain_per_100(
            first_f1=first.macro_f1,
            first_ci=first.macro_f1_ci,
            first_labels=first.labels,
            last_f1=last.macro_f1,
            last_ci=last.macro_f1_ci,
            last_labels=last.labels,
        )
    stable = changed is not None and changed < STABLE_SHARE
    if not stable:
        sentence = SENTENCE_CHANGING.format(changed=_pct(changed))
        return StoppingSignal(False, sentence, tuple(changes), changed, gain)
    if gain is None:
        why = (
            "no evaluation macro-F1 with an interval on both ends"
            if first.labels < last.labels
            else "no labels were added between them"
        )
        sentence = SENTENCE_NO_GAIN.format(changed=_pct(changed), why=why)
        return StoppingSignal(False, sentence, tuple(changes), changed, None)
    if not gain.includes_zero:
        sentence = SENTENCE_GAINING.format(changed=_pct(changed), gain=_gain_text(gain))
        return StoppingSignal(False, sentence, tuple(changes), changed, gain)
    sentence = SENTENCE_STOP.format(changed=_pct(changed), gain=_gain_text(gain))
    return StoppingSignal(True, sentence, tuple(changes), changed, gain)


def labels_to_narrow(
    *, recall: float | None, n_positives: int, n_samples: int, half_width: float = 0.02
) -> int | None:
    """More evaluation labels for a recall's 95% interval to shrink to +-`half_width`.

    Normal approximation: positives needed = z^2 p (1 - p) / half_width^2 (p = 0.5 when the
    recall is unknown), reached at the class's observed share of the labels. 0 when already
    there; None when the class has no labels to estimate its share from.
    """
    if n_samples <= 0 or n_positives <= 0:
        return None
    p = 0.5 if recall is None else min(max(float(recall), 0.0), 1.0)
    p = min(max(p, 0.05), 0.95)  # an observed 0 or 1 still has an interval
    needed = math.ceil(Z95**2 * p * (1 - p) / half_width**2)
    if needed <= n_positives:
        return 0
    return math.ceil((needed - n_positives) * n_samples / n_positives)


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    weight: float
    mean_confidence: float
    accuracy: float


def reliability_table(
    confidence: Any, correct: Any, *, sample_weight: Any = None, n_bins: int = 15
) -> tuple[list[ReliabilityBin], float | None]:
    """Top-label reliability bins (equal width, as the project's ECE) and their ECE.

    Parameters
    ----------
    confidence : array-like of shape (n,)
        The top class's probability.
    correct : array-like of shape (n,)
        Whether the top class is the true label.
    sample_weight : array-like of shape (n,), optional
        Inverse inclusion probabilities of the evaluation draw.

    Returns
    -------
    The non-empty bins, and the ECE (None without cases).
    """
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct, dtype=float)
    w = np.ones_like(conf) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if conf.size == 0 or w.sum() <= 0:
        return [], None
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    bins = []
    gap = 0.0
    for b in range(n_bins):
        mask = which == b
        if not mask.any():
            continue
        weight = float(w[mask].sum())
        mean_conf = float(np.average(conf[mask], weights=w[mask]))
        accuracy = float(np.average(hit[mask], weights=w[mask]))
        gap += weight * abs(accuracy - mean_conf)
        bins.append(
            ReliabilityBin(
                low=float(edges[b]),
                high=float(edges[b + 1]),
                count=int(mask.sum()),
                weight=weight,
                mean_confidence=mean_conf,
                accuracy=accuracy,
            )
        )
    return bins, float(gap / w.sum())


def top_confusions(
    y_true: Any, y_pred: Any, *, sample_weight: Any = None, top: int = 10
) -> list[tuple[Any, Any, int, float]]:
    """The most frequent (true, predicted) pairs with true != predicted.

    Returns (true, predicted, cases, share of all weighted cases), most weighted first.
    """
    truth = np.asarray(y_true)
    pred = np.asarray(y_pred)
    w = np.ones(truth.size) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    total = float(w.sum())
    if truth.size == 0 or total <= 0:
        return []
    wrong = truth != pred
    pairs: dict[tuple[Any, Any], list[float]] = {}
    for t, p, weight in zip(
        truth[wrong].tolist(), pred[wrong].tolist(), w[wrong].tolist(), strict=True
    ):
        entry = pairs.setdefault((t, p), [0, 0.0])
        entry[0] += 1
        entry[1] += weight
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1][1], -kv[1][0], str(kv[0])))
    return [(t, p, int(n), float(s / total)) for (t, p), (n, s) in ranked[:top]]
