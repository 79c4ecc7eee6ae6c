"""The pool probe: a uniform random sample of the pool, labelled alongside the strategy's picks.

The warm-up promotion rule judges champion and challenger on analysts' pool labels while the
evaluation split has too few. The strategy's picks are no sample of the pool: they are the cases
the model was least sure of, and in the loop benchmark a challenger that won 93% of paired
resamples of them was 0.052 worse on the population. So a share of the pool picks (PROBE_SHARE,
while evaluation evidence is short) is a probability sample instead, and only its labels are
scored (both sides still train on every label).

The design is the evaluation sample's (`active_learning.ml.evaluation_design`) with one stratum:
sequential Poisson sampling with equal size measures. Each pool case has a fixed uniform key
(`probe_keys`, a seeded hash of its id, so nothing is stored and cases imported later join with
theirs); the probe draws the unsettled cases in ascending key. With t the key of the lowest case
not yet settled (no analyst label, not excluded, not given up), every case with a key below t
has been labelled, whoever picked it (a strategy's pick with a low key belongs to the sample as
much as a probe's), and each pool case was included with the same probability t: the labelled
cases below t are a simple random sample of the pool, each weighing 1 / t (equal weights).
A case the analysts gave up on (a done item, no label, nothing live) is settled without a label
and left out: nonresponse, rare.

Pure: no Django imports.
"""

from __future__ import annotations

import numpy as np

from active_learning.ml.crossfit import id_hash
from active_learning.ml.evaluation_design import inverse_inclusion_weights

# Share of the pool picks drawn by the probe while evaluation evidence is short. With the
# warm-up's evaluation share (0.3 of claims) about 14% of all labels: ~28 by 200 labels, which
# the evaluation labels (~60 by then) join in the warm-up comparison.
PROBE_SHARE = 0.2
_SALT = 0x9B0BE5  # keeps the probe's keys unrelated to other seeded hashes of the same ids


def probe_keys(case_ids: np.ndarray, split_seed: int) -> np.ndarray:
    """Each case's fixed uniform key in [0, 1) (lower keys are drawn first)."""
    return id_hash(np.asarray(case_ids, dtype=np.int64), (abs(int(split_seed)) + _SALT) % 2**63)


def probe_threshold(keys: np.ndarray, settled: np.ndarray) -> float:
    """The key of the lowest unsettled case: every case below it is settled (1.0 when all are;
    keys are below 1, so then every case is in the sample)."""
    open_keys = np.asarray(keys, dtype=float)[~np.asarray(settled, dtype=bool)]
    return float(open_keys.min()) if open_keys.size else 1.0


def probe_sample(keys: np.ndarray, labelled: np.ndarray, threshold: float) -> np.ndarray:
    """Mask of the probe sample: labelled cases with a key below `threshold`."""
    return np.asarray(labelled, dtype=bool) & (np.asarray(keys, dtype=float) < threshold)


def probe_weights(n: int, threshold: float) -> np.ndarray:
    """Horvitz-Thompson weights of `n` sampled cases: 1 / t each (equal size measures)."""
    return inverse_inclusion_weights(np.ones(n), threshold)


def probe_count(n_picks: int, share: float = PROBE_SHARE) -> int:
    """How many of `n_picks` pool picks the probe draws (rounded, at least 1 when share > 0)."""
    if n_picks <= 0 or share <= 0:
        return 0
    return min(n_picks, max(1, round(share * n_picks)))


def interleave(n_picks: int, n_probe: int) -> np.ndarray:
    """Boolean mask over `n_picks` serve positions (best first): True where a probe case goes,
    spread evenly (probe j at about (j + 0.5) / share), so analysts claiming in priority order
    meet probes at the probe's share from the first claim on."""
    mask = np.zeros(max(0, n_picks), dtype=bool)
    if n_picks <= 0 or n_probe <= 0:
        return mask
    positions = np.floor((np.arange(n_probe) + 0.5) * n_picks / n_probe).astype(int)
    mask[np.minimum(positions, n_picks - 1)] = True
    return mask
