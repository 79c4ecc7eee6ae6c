"""How evaluation cases are drawn, and the weights that keep every metric unbiased for the split.

The evaluation split never changes; which of its cases analysts label is a sample. Drawing it
uniformly leaves rare classes without evidence for thousands of labels (20 classes, some under
2%: ~2,000 labels before each has 2). So the sample is stratified by a model's predicted class,
with rare predicted classes over-sampled, and every figure weighs each labelled case by the
inverse of its inclusion probability (Horvitz-Thompson; the ratio form, Hajek, in practice).

The design is sequential Poisson sampling (Ohlsson 1998): each case has a fixed uniform number
``u`` (a seeded hash of its id) and a size measure ``lambda`` (its stratum's share of the sample
divided by the stratum's size; the measures sum to 1). Cases are drawn in ascending order of their
key ``u / lambda``; once every case with a key below ``t`` is drawn, case i was included with
probability ``min(1, t * lambda_i)``, and ``t`` is about the number drawn. Draws may stop and
resume at any time, which is how a queue fills. Pure: no Django imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# A stratum's share of the sample: this mix of an equal share per stratum and its share of the
# split. 0.5 gives every predicted class at least half an equal share (20 classes: 2.5% of the
# draws, 2 labels each by the 80th) while common classes keep weights within ~6x of rare ones.
EQUAL_SHARE_MIX = 0.5


@dataclass(frozen=True)
class Design:
    """Per case (aligned with the caller's case order): stratum, size measure and draw key."""

    strata: np.ndarray
    sizes: np.ndarray
    keys: np.ndarray


def size_measures(strata: Any, *, mix: float = EQUAL_SHARE_MIX) -> np.ndarray:
    """Each case's size measure ``lambda`` (summing to 1) for a stratified draw.

    Parameters
    ----------
    strata : array-like of shape (n,)
        Each case's stratum (e.g. a model's predicted class); any hashable values.
    mix : float in [0, 1]
        0: proportional allocation (a uniform draw); 1: an equal share per stratum.

    Returns
    -------
    ndarray of shape (n,)
    """
    strata = np.asarray(strata)
    if strata.size == 0:
        return np.zeros(0, dtype=float)
    _, index, counts = np.unique(strata, return_inverse=True, return_counts=True)
    share = (1.0 - mix) * counts / strata.size + mix / counts.size
    return np.asarray(share[index] / counts[index], dtype=float)


def design(strata: Any, uniforms: Any, *, mix: float = EQUAL_SHARE_MIX) -> Design:
    """The stratified design of a split: size measures from `strata`, keys ``u / lambda``."""
    sizes = size_measures(strata, mix=mix)
    u = np.asarray(uniforms, dtype=float)
    return Design(strata=np.asarray(strata), sizes=sizes, keys=u / np.maximum(sizes, 1e-300))


def inclusion_probabilities(sizes: Any, threshold: float) -> np.ndarray:
    """``min(1, t * lambda)``: each case's probability of having been drawn by key threshold t."""
    return np.minimum(1.0, float(threshold) * np.asarray(sizes, dtype=float))


def inverse_inclusion_weights(sizes: Any, threshold: float) -> np.ndarray:
    """Horvitz-Thompson weights ``1 / pi`` of drawn cases (equal sizes give equal weights)."""
    pi = inclusion_probabilities(sizes, threshold)
    return np.asarray(1.0 / np.maximum(pi, 1e-300), dtype=float)


def draw_order(keys: Sequence[float] | np.ndarray) -> np.ndarray:
    """Indices of the cases in the order they are drawn (ascending key, stable)."""
    return np.argsort(np.asarray(keys, dtype=float), kind="stable")


def threshold_after(keys: Any, n_drawn: int) -> float:
    """The key threshold once the first `n_drawn` cases are drawn: the next case's key (the
    sequential Poisson sampling convention); infinite when all are drawn (each was certain)."""
    ordered = np.sort(np.asarray(keys, dtype=float))
    if n_drawn >= ordered.size:
        return float("inf")
    return float(ordered[n_drawn])
