"""Paired comparisons of two models on the same labelled cases (the promotion guards).

Proving 99% precision takes hundreds of positives, so a guard that waits for that proof never
acts early. Comparing the two models on the same cases cancels most of the sampling noise: both
are measured at the precision the champion reaches there (at its own decision, a score of 0.5 or
more, capped at the target), and a paired bootstrap (one resample of cases scores both) gives the
interval of the difference. Measuring at the champion's decision rather than at the top of the
ranking matters with few labels: recall at 100% precision is the rank of the first mistake, which
one case moves. Pure: no Django imports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

DECISION = 0.5  # the champion's own decision: the tier's probability at least this
MIN_POSITIVES = 5  # fewer true positives on the labels compared: no paired guard
N_BOOTSTRAP = 500


@dataclass(frozen=True)
class PairedRecall:
    """Recall of a positive class (or tier) of champion and challenger at one precision level.

    ``precision`` is the level compared at: the champion's precision at its decision, capped at
    the target. ``difference`` is challenger minus champion; ``difference_ci`` its two-sided 95%
    paired-bootstrap interval, ``p_worse`` the bootstrap share of replicates where the challenger
    is worse by more than the `tolerance` it was measured with, ``p_better`` the share where it
    is higher at all. All None when there are fewer than ``MIN_POSITIVES`` positives.
    """

    n_samples: int
    n_positives: int
    precision: float | None = None
    champion: float | None = None
    challenger: float | None = None
    difference: float | None = None
    difference_ci: tuple[float, float] | None = None
    p_worse: float | None = None
    p_better: float | None = None

    @property
    def measured(self) -> bool:
        return self.difference is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PairedRecall | None:
        if not data:
            return None
        ci = data.get("difference_ci")
        return cls(
            n_samples=int(data.get("n_samples", 0)),
            n_positives=int(data.get("n_positives", 0)),
            precision=_float(data.get("precision")),
            champion=_float(data.get("champion")),
            challenger=_float(data.get("challenger")),
            difference=_float(data.get("difference")),
            difference_ci=None if ci is None else (float(ci[0]), float(ci[1])),
            p_worse=_float(data.get("p_worse")),
            p_better=_float(data.get("p_better")),
        )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _curves(
    positive: np.ndarray, scores: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative weighted positives, cumulative weight) at each valid cut, rows = replicates.

    ``weights`` is (n_rep, n); cuts fall at the ends of runs of tied scores, highest first.
    """
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], positive[order]
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    w = weights[:, order]
    return np.cumsum(w * y, axis=1)[:, ends], np.cumsum(w, axis=1)[:, ends]


def _decision_precision(
    positive: np.ndarray, decided: np.ndarray, weights: np.ndarray, target: float
) -> np.ndarray:
    """Per row of `weights`, the precision of the `decided` cases, capped at `target` (the target
    itself when nothing is decided)."""
    k = weights @ (positive & decided).astype(float)
    n = weights @ decided.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(n > 0, np.minimum(target, k / n), target))


def _recall_at(k: np.ndarray, n: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Per row, the largest recall among cuts whose precision reaches that row's `level`."""
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n > 0, k / n, 0.0)
        recall = np.where(k[:, -1:] > 0, k / k[:, -1:], 0.0)
    ok = precision >= level[:, None] - 1e-12
    return np.asarray(np.where(ok, recall, 0.0).max(axis=1))


def paired_recall(
    positive: Any,
    champion_scores: Any,
    challenger_scores: Any,
    *,
    target_precision: float,
    sample_weight: Any = None,
    n_bootstrap: int = N_BOOTSTRAP,
    random_state: Any = 0,
    tolerance: float = 0.0,
) -> PairedRecall:
    """Both models' recall of the positives at the precision the champion reaches, paired.

    Parameters
    ----------
    positive : array-like of bool, shape (n,)
        Whether each case truly belongs to the guarded class or tier.
    champion_scores, challenger_scores : array-like of float, shape (n,)
        Each model's score for that class or tier (e.g. the prohibited tier's probability).
    target_precision : float
        The level is ``min(target, the champion's precision where its score >= 0.5)``.
    sample_weight : array-like of float, shape (n,), optional
        Inverse inclusion probabilities of the cases (weighted precision and recall).
    tolerance : float
        ``p_worse`` counts replicates where the challenger is worse by more than this.
    """
    y = np.asarray(positive, dtype=bool)
    old, new = np.asarray(champion_scores, float), np.asarray(challenger_scores, float)
    n, n_pos = int(y.size), int(y.sum())
    if n_pos < MIN_POSITIVES:
        return PairedRecall(n_samples=n, n_positives=n_pos)
    base = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    rng = np.random.default_rng(random_state)
    reps = np.vstack([base[None, :], rng.poisson(1.0, size=(n_bootstrap, n)) * base])
    k_old, n_old = _curves(y, old, reps)
    k_new, n_new = _curves(y, new, reps)
    level = _decision_precision(y, old >= DECISION, reps, float(target_precision))
    recall_old, recall_new = _recall_at(k_old, n_old, level), _recall_at(k_new, n_new, level)
    has_pos = k_old[:, -1] > 0
    diff = (recall_new - recall_old)[1:][has_pos[1:]]
    return PairedRecall(
        n_samples=n,
        n_positives=n_pos,
        precision=float(level[0]),
        champion=float(recall_old[0]),
        challenger=float(recall_new[0]),
        difference=float(recall_new[0] - recall_old[0]),
        difference_ci=(float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5)))
        if diff.size
        else None,
        p_worse=float(np.mean(diff < -tolerance)) if diff.size else None,
        p_better=float(np.mean(diff > 0)) if diff.size else None,
    )


@dataclass(frozen=True)
class _PairedFigures:
    """One metric of champion and challenger on the same labels, and the paired-bootstrap share
    of replicates in which the challenger's is better (``p_better``)."""

    champion: float
    challenger: float
    p_better: float

    def to_json(self) -> dict[str, Any]:
        return {"champion": self.champion, "challenger": self.challenger, "p_better": self.p_better}

    @staticmethod
    def _figures(data: dict[str, Any]) -> dict[str, float]:
        return {key: float(data[key]) for key in ("champion", "challenger", "p_better")}


@dataclass(frozen=True)
class PairedLoss(_PairedFigures):
    """Per-class log loss of champion and challenger (the mean over classes of each class's mean
    loss, so rare classes count like macro-F1 counts them); ``p_better``: the challenger's is
    lower."""

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PairedLoss | None:
        return cls(**cls._figures(data)) if data else None


@dataclass(frozen=True)
class PairedF1(_PairedFigures):
    """Macro-F1 of champion and challenger (``p_better``: the challenger's is higher); with both
    models' probabilities, ``loss`` compares their per-class log loss on the same replicates."""

    loss: PairedLoss | None = None

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if self.loss is not None:
            out["loss"] = self.loss.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PairedF1 | None:
        if not data:
            return None
        return cls(**cls._figures(data), loss=PairedLoss.from_json(data.get("loss")))


def _replicates(n: int, n_bootstrap: int, random_state: Any, sample_weight: Any) -> np.ndarray:
    """Row 0 the cases' own weights, then `n_bootstrap` Poisson resamples of them."""
    rng = np.random.default_rng(random_state)
    reps = np.vstack([np.ones((1, n)), rng.poisson(1.0, size=(n_bootstrap, n))])
    if sample_weight is not None:
        reps = reps * np.asarray(sample_weight, dtype=float)[None, :]
    return reps


def paired_macro_f1(
    y_true: Any,
    champion_pred: Any,
    challenger_pred: Any,
    *,
    classes: Any,
    sample_weight: Any = None,
    n_bootstrap: int = N_BOOTSTRAP,
    random_state: Any = 0,
) -> PairedF1:
    """Both models' macro-F1 over `classes` (those with a label in `y_true`), paired: each
    bootstrap replicate reweighs the same cases for both. `sample_weight` (e.g. the evaluation
    design's inverse inclusion probabilities) scales every case's counts."""
    y = np.asarray(y_true)
    present = [c for c in classes if np.any(y == c)]
    truth = np.stack([y == c for c in present], axis=1).astype(float)
    reps = _replicates(y.size, n_bootstrap, random_state, sample_weight)
    f1 = []
    for pred in (np.asarray(champion_pred), np.asarray(challenger_pred)):
        predicted = np.stack([pred == c for c in present], axis=1).astype(float)
        tp, n_true, n_pred = reps @ (truth * predicted), reps @ truth, reps @ predicted
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.where(n_true + n_pred > 0, 2 * tp / (n_true + n_pred), 0.0)
        f1.append(per_class.mean(axis=1))
    return PairedF1(
        champion=float(f1[0][0]),
        challenger=float(f1[1][0]),
        p_better=float(np.mean(f1[1][1:] > f1[0][1:])),
    )


# The probability a loss is taken at, at least: one confidently wrong case must not outweigh
# a hundred cases (log(1e-3) ~ 6.9, against ~0.1-1 for most cases).
LOSS_FLOOR = 1e-3


def paired_log_loss(
    y_true: Any,
    champion_proba: Any,
    challenger_proba: Any,
    *,
    classes: Any,
    sample_weight: Any = None,
    n_bootstrap: int = N_BOOTSTRAP,
    random_state: Any = 0,
) -> PairedLoss | None:
    """Both models' per-class log loss on the same labels, paired like `paired_macro_f1`.

    A macro-F1 moves only where the two models' top classes differ, a few cases in a few
    hundred; every case's probability of its true class moves, so the same labels tell a model
    that learnt more from one that did not with far fewer of them. Columns of the probabilities
    follow `classes`; each class present in `y_true` counts once (its cases' weighted mean
    loss), each case's probability floored at LOSS_FLOOR. Labels outside `classes` are left
    out (as `paired_macro_f1` leaves them out). None when a probability is not a finite number
    (no comparison beats a broken model) or no label is left.
    """
    y = np.asarray(y_true)
    old, new = np.asarray(champion_proba, float), np.asarray(challenger_proba, float)
    if not (np.isfinite(old).all() and np.isfinite(new).all()):
        return None
    column = {c: i for i, c in enumerate(classes)}
    known = np.array([label in column for label in y.tolist()], dtype=bool)
    if not known.any():
        return None
    index = np.array([column[label] for label in y[known].tolist()], dtype=int)
    old, new = old[known], new[known]
    weights = None if sample_weight is None else np.asarray(sample_weight, float)[known]
    present = np.unique(index)
    truth = (index[:, None] == present[None, :]).astype(float)
    reps = _replicates(index.size, n_bootstrap, random_state, weights)
    counts = reps @ truth
    seen = counts > 0  # a class a resample missed drops out of that resample, for both sides
    n_seen = seen.sum(axis=1)
    losses = []
    for proba in (old, new):
        case_loss = -np.log(np.maximum(proba[np.arange(index.size), index], LOSS_FLOOR))
        per_class = (reps @ (truth * case_loss[:, None])) / np.where(seen, counts, 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):  # an empty resample: NaN, never better
            losses.append(np.where(seen, per_class, 0.0).sum(axis=1) / n_seen)
    return PairedLoss(
        champion=float(losses[0][0]),
        challenger=float(losses[1][0]),
        p_better=float(np.mean(losses[1][1:] < losses[0][1:])),
    )
