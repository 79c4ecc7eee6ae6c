"""The deterministic evaluation split (DESIGN "The evaluation split never trains anything").

A case is `eval` where a hash of (project split seed, external_id), read as a number in [0, 1),
falls under the project's evaluation fraction: the same id always gets the same split, whatever
the file order, and one row is enough to decide (streamable).
"""

from __future__ import annotations

from collections.abc import Callable

from labeling.models import Split
from workbench.core.hashing import unit_hash, unit_hasher


def split_unit(*, split_seed: int, external_id: str) -> float:
    """The id's position in [0, 1): `unit_hash(seed, external_id)`."""
    return unit_hash(split_seed, external_id)


def split_for(*, split_seed: int, external_id: str, evaluation_fraction: float) -> str:
    """`eval` when the id's position falls under `evaluation_fraction`, else `pool`."""
    split = split_function(split_seed=split_seed, evaluation_fraction=evaluation_fraction)
    return split(external_id)


def split_function(*, split_seed: int, evaluation_fraction: float) -> Callable[[str], str]:
    """`split_for` bound to one project's seed and fraction, for a hot loop over many ids."""
    draw = unit_hasher(split_seed)
    eval_value, pool_value = Split.EVAL.value, Split.POOL.value

    def split(external_id: str) -> str:
        return eval_value if draw(external_id) < evaluation_fraction else pool_value

    return split
