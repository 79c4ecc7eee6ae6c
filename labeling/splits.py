"""The deterministic evaluation split (DESIGN "The evaluation split never trains anything").

A case is `eval` where a hash of (project split seed, external_id), read as a number in [0, 1),
falls under the project's evaluation fraction: the same id always gets the same split, whatever
the file order, and one row is enough to decide (streamable).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from labeling.models import Split

_SCALE = float(2**64)


def split_unit(*, split_seed: int, external_id: str) -> float:
    """The id's position in [0, 1): blake2b-64 of "<seed>:<external_id>" divided by 2**64."""
    digest = hashlib.blake2b(f"{split_seed}:{external_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def split_for(*, split_seed: int, external_id: str, evaluation_fraction: float) -> str:
    """`eval` when the id's position falls under `evaluation_fraction`, else `pool`."""
    split = split_function(split_seed=split_seed, evaluation_fraction=evaluation_fraction)
    return split(external_id)


def split_function(*, split_seed: int, evaluation_fraction: float) -> Callable[[str], str]:
    """`split_for` bound to one project's seed and fraction, for a hot loop over many ids."""
    prefix = f"{split_seed}:".encode()
    threshold = evaluation_fraction * _SCALE
    blake2b = hashlib.blake2b
    eval_value, pool_value = Split.EVAL.value, Split.POOL.value

    def split(external_id: str) -> str:
        digest = blake2b(prefix + external_id.encode(), digest_size=8).digest()
        return eval_value if int.from_bytes(digest, "big") < threshold else pool_value

    return split
