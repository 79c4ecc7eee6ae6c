"""The evaluation split: deterministic per (seed, id), independent of order, near the fraction."""

from __future__ import annotations

import random

from labeling.splits import split_for, split_function, split_unit


def test_split_is_deterministic_and_order_free() -> None:
    """The same id gets the same split every time, whatever came before it."""
    ids = [f"M{i:07d}" for i in range(2000)]
    split = split_function(split_seed=11, evaluation_fraction=0.2)
    first = {i: split(i) for i in ids}
    shuffled = ids[:]
    random.Random(3).shuffle(shuffled)
    again = split_function(split_seed=11, evaluation_fraction=0.2)
    assert {i: again(i) for i in shuffled} == first
    assert all(
        split_for(split_seed=11, external_id=i, evaluation_fraction=0.2) == first[i]
        for i in ids[:100]
    )


def test_split_follows_the_fraction_and_the_seed() -> None:
    ids = [f"id-{i}" for i in range(20_000)]
    share = sum(split_function(split_seed=1, evaluation_fraction=0.1)(i) == "eval" for i in ids)
    assert 1800 < share < 2200
    assert all(split_function(split_seed=1, evaluation_fraction=0.0)(i) == "pool" for i in ids)
    assert all(split_function(split_seed=1, evaluation_fraction=1.0)(i) == "eval" for i in ids)
    a = [split_function(split_seed=1, evaluation_fraction=0.5)(i) for i in ids[:200]]
    b = [split_function(split_seed=2, evaluation_fraction=0.5)(i) for i in ids[:200]]
    assert a != b  # another seed draws another evaluation set


def test_split_unit_is_in_the_unit_interval() -> None:
    units = [split_unit(split_seed=5, external_id=str(i)) for i in range(1000)]
    assert all(0.0 <= u < 1.0 for u in units)
    growing = split_function(split_seed=5, evaluation_fraction=0.3)
    assert all((u < 0.3) == (growing(str(i)) == "eval") for i, u in enumerate(units))
