"""One content hash and one family of seeded draws, shared by both apps."""

from __future__ import annotations

import numpy as np

from active_learning.ml.hashing import content_hash as ml_content_hash
from workbench.core.hashing import content_hash, unit_hash, unit_hasher, unit_hashes


def test_the_embedding_cache_and_the_cases_hash_texts_alike():
    """The ML side keeps a Django-free copy of the content hash: both give the same key."""
    for text in ["", "Café ☕ merchant", "Cafe\u0301", "a" * 10_000]:
        assert ml_content_hash(text) == content_hash(text)
    assert content_hash("Cafe\u0301") == content_hash("Café")  # NFC first


def test_bound_and_vector_draws_equal_the_plain_draw():
    """`unit_hasher` and `unit_hashes` are fast paths of `unit_hash`, never other draws."""
    draw = unit_hasher(42, "stop-set")
    ids = [0, 1, 17, 10**12]
    plain = [unit_hash(42, "stop-set", i) for i in ids]
    assert [draw(i) for i in ids] == plain
    assert np.array_equal(unit_hashes(42, "stop-set", values=ids), np.array(plain))
    assert all(0.0 <= v < 1.0 for v in plain)
    assert len(set(plain)) == len(plain)
