"""The reference backend: the sentence-transformers model run by torch, loaded lazily."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from active_learning.ml.encoding import (
    DEFAULT_MODEL_NAME,
    ChunkedEncoder,
    default_model_path,
    offline,
)

__all__ = ["SentenceTransformerEncoder"]


class SentenceTransformerEncoder(ChunkedEncoder):
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
        super().__init__(
            model_name=model_name
            or (DEFAULT_MODEL_NAME if model_path is None else Path(model_path).name),
            chunk_size=chunk_size,
            num_threads=num_threads,
        )
        self.model_path = model_path
        self.batch_size = batch_size
        self.device = device

    def _load(self) -> Any:
        offline()
        from sentence_transformers import SentenceTransformer

        path = self.model_path if self.model_path is not None else default_model_path()
        return SentenceTransformer(str(path), device=self.device)

    def _dimension(self, model: Any) -> int:
        return int(model.get_embedding_dimension())

    @contextmanager
    def _thread_limits(self) -> Iterator[None]:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with super()._thread_limits():
                yield
        finally:
            torch.set_num_threads(previous)

    def _encode_chunk(self, model: Any, texts: list[str]) -> np.ndarray:
        return np.asarray(
            model.encode(
                texts,
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            ),
            dtype=np.float32,
        )
