"""Tests for active_learning.ml.embeddings: hashing, dedup, cache, progress and the bundled model."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from active_learning.ml.embeddings import (
    EmbeddingCache,
    InMemoryEmbeddingCache,
    SentenceTransformerEncoder,
    content_hash,
)


class FakeModel:
    """Stands in for a SentenceTransformer: records every text it encodes."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.calls = 0

    def get_embedding_dimension(self) -> int:
        return 4

    def encode(self, texts, **kwargs):
        self.calls += 1
        self.seen.extend(texts)
        assert kwargs["show_progress_bar"] is False
        assert kwargs["normalize_embeddings"] is True
        out = np.array([[len(t), t.count("a"), 1.0, sum(map(ord, t)) % 7] for t in texts], float)
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def fake_encoder() -> tuple[SentenceTransformerEncoder, FakeModel]:
    encoder = SentenceTransformerEncoder(model_name="fake", chunk_size=2, num_threads=1)
    model = FakeModel()
    encoder._model = model
    return encoder, model


def test_content_hash_is_sha256_of_nfc_text():
    """Composed and decomposed forms of the same text share one 64-hex-digit hash."""
    composed, decomposed = "caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9")
    assert composed != decomposed
    assert content_hash(composed) == content_hash(decomposed)
    assert len(content_hash("x")) == 64
    assert content_hash("x") != content_hash("y")


def test_encoder_is_lazy():
    """Building an encoder loads no model (safe before a worker forks)."""
    encoder = SentenceTransformerEncoder()
    assert not encoder.is_loaded


def test_duplicates_are_encoded_once(fake_encoder):
    """Each distinct text reaches the model once; rows come back in input order."""
    encoder, model = fake_encoder
    texts = ["abc", "b", "abc", "caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9"), "b"]
    vectors = encoder.encode(texts)
    assert sorted(model.seen) == sorted(["abc", "b", "caf\u00e9"])
    assert vectors.shape == (6, 4) and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[3], vectors[4])
    assert encoder.n_encoded_ == 3


def test_cache_hits_skip_the_model(fake_encoder):
    """Vectors found in the cache under (model, content hash) are not encoded again."""
    encoder, model = fake_encoder
    cache = InMemoryEmbeddingCache()
    assert isinstance(cache, EmbeddingCache)
    first = encoder.encode(["one", "two"], cache=cache)
    assert len(cache) == 2
    second = encoder.encode(["two", "three", "one"], cache=cache)
    assert sorted(model.seen) == ["one", "three", "two"]
    np.testing.assert_array_equal(second[0], first[1])
    assert cache.get_many("other-model", [content_hash("one")]) == {}


def test_progress_reports_distinct_texts(fake_encoder):
    """Progress goes up to the number of distinct texts that missed the cache."""
    encoder, _ = fake_encoder
    calls: list[tuple[int, int]] = []
    encoder.encode(
        ["a", "bb", "a", "ccc", "dddd", "eeeee"], progress=lambda d, n: calls.append((d, n))
    )
    assert calls == [(2, 5), (4, 5), (5, 5)]


@pytest.fixture(scope="module")
def bundled_encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(num_threads=1)


def test_bundled_model_gives_unit_384d_vectors(bundled_encoder):
    """The bundled all-MiniLM-L6-v2 returns unit-norm float32 vectors of dimension 384."""
    vectors = bundled_encoder.encode(["I lost my card", "What is the exchange rate?"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_texts(bundled_encoder):
    """A paraphrase pair has a higher cosine than an unrelated pair."""
    a, b, c = bundled_encoder.encode(
        ["I lost my card", "My card was stolen", "What is the euro exchange rate today?"]
    )
    assert float(a @ b) > float(a @ c) + 0.3
