"""The pool probe's place in the queue: how large a share it takes and how its cases sit among
the strategy's picks (`active_learning.ml.pool_probe` holds the design).

Light (no model, no vectors): both the refresh after a retrain and the top-up from stored scores
between retrains (`queue_refill`, run by web processes) serve the probe, so the warm-up's
evidence keeps growing at its share whichever of them fills the queue.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from active_learning.ml.pool_probe import PROBE_SHARE, interleave, probe_keys
from labeling.contracts import PROBE_DETAIL, PickReason
from labeling.models import Project
from labeling.services.queue import QueueEntry

PROBE = PROBE_DETAIL  # the reason details' key of a probe pick (its key): benchmarks count them


def probe_share(project: Project) -> float:
    """The share of pool picks the probe draws: PROBE_SHARE while evaluation evidence is short
    (the warm-up comparison judges on the probe's labels), else none."""
    return PROBE_SHARE if project.evaluation_evidence_short else 0.0


def probe_entry(card: QueueEntry, key: float) -> QueueEntry:
    """`card` (a random pick's entry) marked as the probe's, with its key."""
    reason = card.reason if isinstance(card.reason, PickReason) else PickReason(strategy="random")
    reason = dataclasses.replace(reason, details={**reason.details, PROBE: round(key, 6)})
    return card._replace(reason=reason)


def with_probes(
    project: Project, picks: list[QueueEntry], probes: np.ndarray, cards: dict[int, QueueEntry]
) -> list[QueueEntry]:
    """The strategy's picks (best first) with the probe's cases spread among them
    (`pool_probe.interleave`), priorities descending in that order. `cards` holds a random
    pick's entry per probe case where one can be made (else a bare random pick's)."""
    keys = probe_keys(probes, project.split_seed)
    probe_entries = [
        probe_entry(cards.get(case_id) or QueueEntry(case_id), key)
        for case_id, key in zip(probes.tolist(), keys.tolist(), strict=True)
    ]
    total = len(picks) + len(probe_entries)
    at_probe = interleave(total, len(probe_entries))
    ordered, p, q = [], iter(probe_entries), iter(picks)
    for is_probe in at_probe.tolist():
        ordered.append(next(p) if is_probe else next(q))
    return [e._replace(priority=float(total - rank)) for rank, e in enumerate(ordered)]
