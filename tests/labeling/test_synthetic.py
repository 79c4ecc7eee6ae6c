"""Tests for the synthetic merchant generator and its taxonomy (pure Python, no database)."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from collections import Counter
from itertools import islice

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from labeling.synthetic import (
    CATEGORIES,
    NEIGHBOUR_PAIRS,
    TIERS,
    MerchantRecord,
    are_neighbours,
    category_names,
    generate,
    iter_records,
    label_class_specs,
    neighbours_of,
    priors,
)
from labeling.synthetic.generator import INVALID_COUNT, INVALID_RATE
from labeling.synthetic.taxonomy import RESERVED_KEYS


@pytest.fixture(scope="module")
def records() -> list[MerchantRecord]:
    return generate(6000, seed=7, noise=0.2)


# --- taxonomy ---------------------------------------------------------------------------------


def test_taxonomy_has_at_least_12_categories_across_all_tiers() -> None:
    """The taxonomy covers supportable, restricted and prohibited businesses."""
    assert len(CATEGORIES) >= 12
    assert {c.tier for c in CATEGORIES} == set(TIERS)
    assert len(set(category_names())) == len(CATEGORIES)
    for c in CATEGORIES:
        assert re.fullmatch(r"[a-z][a-z_]*", c.name)
        assert c.display_name and "\n" not in c.description and len(c.description) > 80
        assert "Examples" in c.guideline
        assert c.mccs and all(re.fullmatch(r"\d{4}", m) for m in c.mccs)


def test_every_category_has_a_declared_neighbour() -> None:
    """Neighbour pairs name known categories, are symmetric and leave no category alone."""
    names = set(category_names())
    for a, b in NEIGHBOUR_PAIRS:
        assert a in names and b in names and a != b
        assert are_neighbours(a, b) and are_neighbours(b, a)
    for name in names:
        assert neighbours_of(name)
    assert not are_neighbours("gambling", "adult_content")


def test_label_class_specs_have_unique_unreserved_shortcut_keys() -> None:
    """Keys run 1-9 then letters, are unique and never a reserved queue key."""
    specs = label_class_specs()
    keys = [s["shortcut_key"] for s in specs]
    assert keys[:9] == list("123456789")
    assert len(set(keys)) == len(keys) == len(CATEGORIES)
    assert not set(keys) & RESERVED_KEYS
    assert [s["order"] for s in specs] == list(range(len(specs)))
    assert {s["name"] for s in specs} == set(category_names())


def test_some_classes_are_rare(records: list[MerchantRecord]) -> None:
    """Several classes have a prior under 2%, and the rarest stay under 2% in generated data."""
    p = priors()
    assert sum(p.values()) == pytest.approx(1.0)
    rare = [name for name, share in p.items() if share < 0.02]
    assert len(rare) >= 3
    counts = Counter(r.true_label for r in records)
    for name in (name for name, share in p.items() if share < 0.016):
        assert 0 < counts[name] / len(records) < 0.02
    assert set(counts) == set(category_names())


# --- determinism and records ------------------------------------------------------------------


def test_same_seed_gives_identical_records() -> None:
    """The same seed and noise give the same records; another seed gives other records."""
    assert generate(300, seed=11, noise=0.2) == generate(300, seed=11, noise=0.2)
    other = generate(300, seed=12, noise=0.2)
    same = generate(300, seed=11, noise=0.2)
    assert sum(a.description == b.description for a, b in zip(same, other, strict=True)) < 5


def test_contents_do_not_depend_on_noise_or_length() -> None:
    """Noise only changes given labels; a shorter run is a prefix of a longer one."""
    clean = generate(200, seed=3, noise=0.0)
    noisy = generate(400, seed=3, noise=0.5)[:200]
    for a, b in zip(clean, noisy, strict=True):
        assert a.description == b.description and a.true_label == b.true_label
    assert all(r.given_label == r.true_label and r.noise_kind == "none" for r in clean)


def test_record_fields_look_like_a_merchant(records: list[MerchantRecord]) -> None:
    """Ids are sequential, metadata is plausible and carries no labels."""
    assert [r.external_id for r in records[:3]] == ["M0000001", "M0000002", "M0000003"]
    for r in records[:500]:
        assert r.website.startswith("https://") and " " not in r.website
        assert re.fullmatch(r"\d{4}", r.mcc) and len(r.country) == 2
        assert r.monthly_volume_usd > 0 and r.average_ticket_usd > 0
        assert r.years_in_business >= 0 and 0 <= r.chargeback_rate < 1
        assert r.text == r.description
        meta = r.metadata()
        assert "true_label" not in meta and "given_label" not in meta
        assert r.to_dict()["true_label"] == r.true_label
        assert r.secondary_label is None or are_neighbours(r.true_label, r.secondary_label)


def test_descriptions_are_mostly_distinct(records: list[MerchantRecord]) -> None:
    """At least 95% of descriptions are unique (measured: 99.9% on 6,000)."""
    texts = [r.description for r in records]
    assert len(set(texts)) / len(texts) >= 0.95
    lengths = [len(t.split()) for t in texts]
    assert min(lengths) < 12 and max(lengths) > 60


# --- noise ------------------------------------------------------------------------------------


def test_noise_rate_is_exact_and_split_between_kinds() -> None:
    """5,000 records at 20% noise have exactly 1,000 wrong given labels, half to neighbours."""
    recs = generate(5000, seed=5, noise=0.2)
    flipped = [r for r in recs if r.given_label != r.true_label]
    assert len(flipped) == 1000
    assert all(r.noise_kind != "none" for r in flipped)
    assert all(r.noise_kind == "none" for r in recs if r.given_label == r.true_label)
    kinds = Counter(r.noise_kind for r in flipped)
    assert kinds == {"neighbour": 500, "uniform": 500}
    assert all(
        are_neighbours(r.true_label, r.given_label) for r in flipped if r.noise_kind == "neighbour"
    )
    # Flips are spread over the run, not bunched at its start or end.
    positions = [i for i, r in enumerate(recs) if r.noise_kind != "none"]
    assert 0.45 < float(np.mean(positions)) / len(recs) < 0.55


@pytest.mark.parametrize(("n", "noise"), [(1, 0.2), (7, 0.5), (10, 1.0), (333, 0.03), (50, 0.0)])
def test_noise_count_is_round_of_rate_times_n(n: int, noise: float) -> None:
    """Any n and rate: the flip count is round(noise * n)."""
    recs = generate(n, seed=1, noise=noise, neighbour_share=0.3)
    assert sum(r.given_label != r.true_label for r in recs) == int(noise * n + 0.5)


def test_invalid_arguments_are_rejected() -> None:
    """A negative count or a rate outside [0, 1] raises ValueError at call time."""
    with pytest.raises(ValueError, match=re.escape(INVALID_COUNT.format(n=-1))):
        iter_records(-1)
    with pytest.raises(ValueError, match=re.escape(INVALID_RATE.format(name="noise", value=1.5))):
        iter_records(10, noise=1.5)


# --- streaming --------------------------------------------------------------------------------


def test_iter_records_streams() -> None:
    """Records come lazily: a billion-record run starts at once (its memory budget is measured
    by bench/budgets.py)."""
    stream = iter_records(10**9, seed=2, noise=0.2)
    is_generator = inspect.isgenerator(stream)  # kept out of the assert: it would narrow the type
    assert is_generator
    assert [r.external_id for r in islice(stream, 3)] == ["M0000001", "M0000002", "M0000003"]


def test_package_imports_without_django() -> None:
    """The generator is pure Python + numpy: importing it never loads Django."""
    code = (
        "import sys, labeling.synthetic, labeling.synthetic.generator, "
        "labeling.synthetic.templates, labeling.synthetic.vocabulary; "
        "assert 'django' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- learnability -----------------------------------------------------------------------------


def test_text_baseline_is_good_but_not_perfect(records: list[MerchantRecord]) -> None:
    """TF-IDF + logistic regression on true labels lands in [0.75, 0.95] macro-F1, and most of
    its confusions fall in declared neighbour pairs (overlap, not random noise)."""
    texts = [r.description for r in records]
    labels = [r.true_label for r in records]
    x_train, x_test, y_train, y_test = train_test_split(
        texts, labels, test_size=0.3, random_state=0, stratify=labels
    )
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    model = LogisticRegression(C=10.0, max_iter=2000)
    with threadpool_limits(1):  # 2 BLAS threads made this fit ~7x slower on 2-core machines
        model.fit(vectorizer.fit_transform(x_train), y_train)
        predicted = model.predict(vectorizer.transform(x_test))
    macro_f1 = f1_score(y_test, predicted, average="macro")
    assert 0.75 <= macro_f1 <= 0.95  # measured 0.858 (seed 7; 0.815-0.858 over seeds 0-9)
    names = list(category_names())
    matrix = confusion_matrix(y_test, predicted, labels=names)
    off_diagonal = matrix.sum() - np.trace(matrix)
    in_pairs = sum(
        int(matrix[i, j])
        for i, a in enumerate(names)
        for j, b in enumerate(names)
        if i != j and are_neighbours(a, b)
    )
    assert in_pairs / off_diagonal >= 0.5  # measured 0.92 (seed 7; 0.89-0.93 over seeds 0-9)
