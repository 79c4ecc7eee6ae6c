"""Synthetic merchant data for demos, tests and benchmarks: taxonomy, phrase banks, generator.

Pure Python + numpy (no Django): ``iter_records(n, seed, noise)`` streams ``MerchantRecord``s with
a known ``true_label`` and a noisy ``given_label``; ``label_class_specs()`` gives the classes.
"""

from labeling.synthetic.generator import BORDERLINE_RATE, generate, iter_records
from labeling.synthetic.records import MerchantRecord, NoiseKind
from labeling.synthetic.taxonomy import (
    CATEGORIES,
    NEIGHBOUR_PAIRS,
    TIERS,
    Category,
    LabelClassSpec,
    Tier,
    are_neighbours,
    category_names,
    get_category,
    label_class_specs,
    neighbours_of,
    priors,
)

__all__ = [
    "BORDERLINE_RATE",
    "CATEGORIES",
    "NEIGHBOUR_PAIRS",
    "TIERS",
    "Category",
    "LabelClassSpec",
    "MerchantRecord",
    "NoiseKind",
    "Tier",
    "are_neighbours",
    "category_names",
    "generate",
    "get_category",
    "iter_records",
    "label_class_specs",
    "neighbours_of",
    "priors",
]
