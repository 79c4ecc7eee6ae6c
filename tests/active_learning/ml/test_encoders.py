"""Tests for the embedding backends: names, building, the ONNX int8 and static encoders, artefacts.

The ONNX export and the (reduced-vocabulary) distillation run once per session; each fixture
first runs a build interrupted by its progress callback, then the real one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from active_learning.ml.embeddings import (
    BACKENDS,
    InMemoryEmbeddingCache,
    OnnxInt8Encoder,
    SentenceTransformerEncoder,
    StaticEncoder,
    artifact_build,
    artifact_path,
    artifact_ready,
    backend_model_name,
    content_hash,
    encoder_build,
    onnx_export,
    static_distill,
)
from active_learning.ml.encoder_artifacts import STALE_BUILD_SECONDS
from active_learning.ml.encoders_static import sif_weights
from labeling.synthetic import iter_records

# Enough of the vocabulary for common English words (BERT's ids below ~2000 are reserved and
# single characters), at a third of the full distillation's time.
TEST_VOCABULARY = 10_000


class Interrupted(Exception):
    pass


def _interrupt(done: int, total: int) -> None:
    raise Interrupted


@dataclass
class Built:
    path: Path
    interrupted_left: list[str]  # names in the parent folder after the interrupted run
    interrupted_ready: bool
    progress: list[tuple[int, int]]  # reported by the completed run


def _build_twice(tmp: Path, build) -> Built:
    out = tmp / "artefact"
    with pytest.raises(Interrupted):
        build(out, _interrupt)
    left = sorted(os.listdir(tmp))
    ready = out.exists()
    seen: list[tuple[int, int]] = []
    path = build(out, lambda done, total: seen.append((done, total)))
    return Built(path, left, ready, seen)


@pytest.fixture(scope="session")
def onnx_built(tmp_path_factory) -> Built:
    return _build_twice(
        tmp_path_factory.mktemp("onnx"),
        lambda out, progress: onnx_export(None, out, progress=progress),
    )


@pytest.fixture(scope="session")
def static_built(tmp_path_factory) -> Built:
    return _build_twice(
        tmp_path_factory.mktemp("static"),
        lambda out, progress: static_distill(
            None, out, progress=progress, vocabulary_size=TEST_VOCABULARY
        ),
    )


@pytest.fixture(scope="session")
def sample_texts() -> list[str]:
    """~300 varied texts: merchant descriptions and names plus edge cases."""
    records = list(iter_records(140, seed=21, noise=0.2))
    texts = [r.text for r in records] + [r.business_name for r in records]
    long_text = " ".join(r.text for r in records[:30])  # far over 256 tokens: truncated
    return [
        *texts,
        "",
        long_text,
        "Café Société — crêpes, bières & vins à Paris",
        "東京のラーメン店、テイクアウトと配達",
        "Zahlungsdienst für Gebühren und Überweisungen",
        "متجر إلكتروني للملابس والأحذية",
        "   ",
        "!!!",
        "🍕🍕 pizza delivery 24/7 🚚",
        "x" * 2000,
    ]


@pytest.fixture(scope="session")
def torch_vectors(sample_texts) -> np.ndarray:
    return SentenceTransformerEncoder(num_threads=1).encode(sample_texts)


def test_backend_model_name():
    """torch keeps the base name (stored vectors stay valid); other backends get a suffix."""
    assert BACKENDS == ("torch", "onnx-int8", "static")
    assert backend_model_name("all-MiniLM-L6-v2", "torch") == "all-MiniLM-L6-v2"
    assert backend_model_name("m", "onnx-int8") == "m@onnx-int8"
    assert backend_model_name("m", "static") == "m@static"
    with pytest.raises(ValueError, match="'gpu'"):
        backend_model_name("m", "gpu")


def test_encoder_build_errors(tmp_path):
    """An unknown backend or a missing artefact is a clear ValueError, not a load failure later."""
    with pytest.raises(ValueError, match="Unknown embedding backend 'fast'"):
        encoder_build("fast", artifacts_dir=tmp_path, model_name="m")
    for backend in ("onnx-int8", "static"):
        with pytest.raises(ValueError, match=f"The {backend} artefact is not built"):
            encoder_build(backend, artifacts_dir=tmp_path, model_name="m")
    (tmp_path / "static").mkdir()  # a bare directory is not a finished artefact
    assert not artifact_ready("static", tmp_path / "static")
    with pytest.raises(ValueError, match="not built"):
        encoder_build("static", artifacts_dir=tmp_path, model_name="m")
    assert artifact_build("torch", artifacts_dir=tmp_path) is None


def test_encoder_build_is_lazy(onnx_built, static_built, tmp_path):
    """encoder_build returns unloaded encoders named as asked, from a data dir or the artefact."""
    torch_encoder = encoder_build("torch", artifacts_dir=tmp_path, model_name="base")
    assert isinstance(torch_encoder, SentenceTransformerEncoder)
    assert torch_encoder.model_name == "base" and not torch_encoder.is_loaded
    onnx = encoder_build("onnx-int8", artifacts_dir=onnx_built.path, model_name="m@onnx-int8")
    assert isinstance(onnx, OnnxInt8Encoder) and not onnx.is_loaded
    assert onnx.model_name == "m@onnx-int8"
    os.symlink(static_built.path, artifact_path(tmp_path, "static"))  # the data-dir layout
    static = encoder_build("static", artifacts_dir=tmp_path, model_name="m@static", num_threads=1)
    assert isinstance(static, StaticEncoder) and not static.is_loaded
    assert static.artifact_dir == tmp_path / "static"


@pytest.mark.parametrize("fixture", ["onnx_built", "static_built"])
def test_interrupted_build_leaves_nothing_finished(fixture, request):
    """An exception mid-build leaves no out_dir and no temporary folder; the next run completes."""
    built: Built = request.getfixturevalue(fixture)
    assert built.interrupted_left == [] and not built.interrupted_ready
    assert artifact_ready(fixture.split("_")[0].replace("onnx", "onnx-int8"), built.path)
    assert sorted(os.listdir(built.path.parent)) == ["artefact"]
    assert built.progress and built.progress[-1][0] == built.progress[-1][1]


def test_builds_are_idempotent(onnx_built, static_built):
    """A finished artefact is returned at once: no progress, no rewritten file."""
    calls: list[tuple[int, int]] = []

    def record(done: int, total: int) -> None:
        calls.append((done, total))

    for path, build in ((onnx_built.path, onnx_export), (static_built.path, static_distill)):
        before = {f.name: f.stat().st_mtime_ns for f in path.iterdir()}
        assert build(None, path, progress=record) == path
        assert {f.name: f.stat().st_mtime_ns for f in path.iterdir()} == before
    assert calls == []


def test_stale_directory_is_replaced(tmp_path):
    """A leftover directory without a manifest is rebuilt, not trusted."""
    out = tmp_path / "static"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"half a file")
    static_distill(None, out, vocabulary_size=2_000)
    assert artifact_ready("static", out)
    assert StaticEncoder(out, model_name="s", num_threads=1).encode(["a shop"]).shape == (1, 256)


def test_onnx_vectors_match_torch(onnx_built, sample_texts, torch_vectors):
    """ONNX int8 vectors are close to torch's: mean cosine >= 0.99, 1st percentile >= 0.97."""
    assert len(sample_texts) >= 290
    encoder = OnnxInt8Encoder(onnx_built.path, model_name="m@onnx-int8", num_threads=1)
    vectors = encoder.encode(sample_texts)
    assert vectors.shape == torch_vectors.shape == (len(sample_texts), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(vectors * torch_vectors, axis=1)
    print(f"onnx/torch cosine mean {cosines.mean():.4f}, p1 {np.percentile(cosines, 1):.4f}")
    assert cosines.mean() >= 0.99, cosines.mean()
    assert np.percentile(cosines, 1) >= 0.97, np.percentile(cosines, 1)


@pytest.mark.parametrize("backend", ["onnx-int8", "static"])
def test_backends_share_dedup_cache_and_progress(backend, onnx_built, static_built):
    """Each distinct text is encoded once, cached under the backend's name, with progress."""
    path = onnx_built.path if backend == "onnx-int8" else static_built.path
    name = backend_model_name("m", backend)
    encoder = encoder_build(backend, artifacts_dir=path, model_name=name, num_threads=1)
    encoder.chunk_size = 2
    cache = InMemoryEmbeddingCache()
    seen: list[tuple[int, int]] = []
    texts = ["pet food shop", "car rental", "pet food shop", "online casino", "car rental"]
    first = encoder.encode(texts, cache=cache, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(2, 3), (3, 3)] and encoder.n_encoded_ == 3
    assert len(cache) == 3
    assert len(cache.get_many(name, [content_hash(t) for t in texts])) == 3
    assert cache.get_many("m", [content_hash(t) for t in texts]) == {}
    np.testing.assert_array_equal(first[0], first[2])
    again = encoder.encode(texts, cache=cache)
    assert encoder.n_encoded_ == 3  # all from the cache
    np.testing.assert_array_equal(first, again)
    assert encoder.encode([]).shape == (0, encoder.dimension)


def test_one_thread_restores_tokenizer_parallelism(static_built, monkeypatch):
    """num_threads=1 switches the tokenizer's parallelism off only while encoding."""
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    StaticEncoder(static_built.path, model_name="s", num_threads=1).encode(["shoe shop"])
    assert "TOKENIZERS_PARALLELISM" not in os.environ


def test_static_vectors_are_unit_deterministic_and_meaningful(static_built, sample_texts):
    """Static vectors: unit rows (the empty text too), the same on reload, paraphrases closer."""
    encoder = StaticEncoder(static_built.path, model_name="m@static", num_threads=1)
    vectors = encoder.encode(sample_texts)
    assert vectors.shape == (len(sample_texts), 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reloaded = StaticEncoder(static_built.path, model_name="m@static", num_threads=2)
    np.testing.assert_array_equal(reloaded.encode(sample_texts), vectors)
    shoes, clothes, pizza, casino, poker = encoder.encode(
        [
            "online store selling shoes and clothing",
            "we sell clothes and shoes on the internet",
            "restaurant serving pizza and pasta",
            "online casino with slots and betting",
            "poker and gambling games for real money",
        ]
    )
    assert shoes @ clothes > max(shoes @ pizza, shoes @ casino)
    assert casino @ poker > max(casino @ pizza, casino @ clothes)


def test_static_tracks_torch_neighbourhoods(static_built, sample_texts, torch_vectors):
    """Static vectors keep much of torch's geometry: nearest neighbours overlap far above chance."""
    static = StaticEncoder(static_built.path, model_name="s", num_threads=1).encode(sample_texts)
    k = 10

    def neighbours(x: np.ndarray) -> np.ndarray:
        similarity = x @ x.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argsort(-similarity, axis=1)[:, :k]

    ours, theirs = neighbours(static), neighbours(torch_vectors)
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(ours, theirs, strict=True)])
    chance = k / (len(sample_texts) - 1)
    print(f"static/torch {k}-NN overlap {overlap:.3f} (chance {chance:.3f})")
    assert overlap > 5 * chance, overlap


def test_sif_weights_downweight_frequent_tokens():
    """SIF weights lie in (0, 1) and rise with rank (rarer tokens count more)."""
    weights = sif_weights(1000)
    assert weights.shape == (1000,)
    assert np.all((weights > 0) & (weights < 1)) and np.all(np.diff(weights) > 0)


def test_killed_build_leftovers_are_swept(tmp_path):
    """Temporary folders of killed builds are removed once stale; fresh ones (a build running
    elsewhere) are left alone."""
    stale, fresh = tmp_path / ".static.building-old", tmp_path / ".static.building-new"
    for path in (stale, fresh):
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"partial")
    old = time.time() - STALE_BUILD_SECONDS - 60
    os.utime(stale, (old, old))
    static_distill(None, tmp_path / "static", vocabulary_size=2_000)
    assert sorted(os.listdir(tmp_path)) == [".static.building-new", "static"]
