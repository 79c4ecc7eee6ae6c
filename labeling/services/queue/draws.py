"""Seeded, reproducible draws of the queue: eval-or-pool and gold per claim, serve order, overlap.

Each draw hashes (project split seed, purpose, ids) to a uniform float in [0, 1), so the same
project, analyst and claim count always draw the same way, independent of timing and of any score.
"""

from __future__ import annotations

from typing import Any

from workbench.core.hashing import unit_hash


def effective_evaluation_fraction(project: Any) -> float:
    """The share of claims drawn from the evaluation split: the warm-up share while the last
    retrain found evaluation evidence short (never below the project's setting), else the
    project's evaluation fraction (0 keeps it 0: a project without an evaluation split)."""
    if project.evaluation_evidence_short and project.evaluation_fraction > 0:
        return max(float(project.evaluation_fraction), float(project.warmup_evaluation_fraction))
    return float(project.evaluation_fraction)


def draw_is_evaluation(
    *, split_seed: int, analyst_id: int, claim_number: int, evaluation_fraction: float
) -> bool:
    """Whether the analyst's `claim_number`-th claim in the project should be an evaluation item."""
    return unit_hash(split_seed, "eval-draw", analyst_id, claim_number) < evaluation_fraction


def draw_is_gold(*, split_seed: int, analyst_id: int, claim_number: int, share: float) -> bool:
    """Whether the analyst's `claim_number`-th claim should serve a gold item, with probability
    `share` (independent of the evaluation draw of the same claim)."""
    return unit_hash(split_seed, "gold-draw", analyst_id, claim_number) < share


def order_key(*, split_seed: int, case_id: int, slot: int) -> float:
    """The item's random serve key (evaluation items are served in ascending key order)."""
    return unit_hash(split_seed, "order", case_id, slot)


def overlap_slots(*, split_seed: int, case_id: int, overlap: int, overlap_fraction: float) -> int:
    """How many items (labels wanted) a case gets: `overlap` for a seeded share, else 1."""
    if overlap <= 1 or unit_hash(split_seed, "overlap", case_id) >= overlap_fraction:
        return 1
    return overlap
