"""The labeling queue: atomic claims with leases, evaluation and gold interleaving, and filling.

Vocabulary: an *item* is one wanted label of a case (overlap k gives k items, slots 0..k-1); an
analyst *holds* the items they claimed (status `claimed`, `assigned_to` them) until they submit,
skip or the *lease* (QUEUE_LEASE_SECONDS) expires; *open* items are free to claim.
"""

from labeling.services.queue.claim import (
    ClaimResult,
    lease_seconds,
    queue_claim_next,
    queue_lease_renew,
    queue_release_expired,
)
from labeling.services.queue.draws import draw_is_evaluation, order_key, overlap_slots
from labeling.services.queue.fill import (
    QueueEntry,
    queue_cases_again,
    queue_fill_random,
    queue_items_create,
)
from workbench.core.hashing import unit_hash

__all__ = [
    "ClaimResult",
    "QueueEntry",
    "draw_is_evaluation",
    "lease_seconds",
    "order_key",
    "overlap_slots",
    "queue_cases_again",
    "queue_claim_next",
    "queue_fill_random",
    "queue_items_create",
    "queue_lease_renew",
    "queue_release_expired",
    "unit_hash",
]
