"""The static backend: a token-embedding table distilled from MiniLM, model2vec-style.

Distillation (Tulkens & van Dongen, *Model2Vec*, 2024) embeds every vocabulary token on its own
(``[CLS] token [SEP]``, mean-pooled) through the transformer, reduces the vectors to 256
dimensions with PCA and weights each token by SIF, ``a / (a + p(token))``, with ``p`` estimated
from Zipf's law over the token's rank. A text's vector is then the normalised mean of its tokens'
rows: no transformer at encode time. The artefact is a ``model2vec.StaticModel`` directory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from active_learning.ml.encoder_artifacts import artifact_build_atomic
from active_learning.ml.encoding import (
    ChunkedEncoder,
    ProgressCallback,
    default_model_path,
    normalize_rows,
    offline,
)

__all__ = ["BACKEND", "StaticEncoder", "sif_weights", "static_distill"]

BACKEND = "static"
PCA_DIMS = 256
SIF_COEFFICIENT = 1e-4


def sif_weights(n_tokens: int, sif_coefficient: float = SIF_COEFFICIENT) -> np.ndarray:
    """SIF weights by token rank, frequencies from Zipf's law (as model2vec does).

    Returns
    -------
    ndarray of shape (n_tokens,), float64, in (0, 1), increasing with rank.
    """
    inverse_rank = 1.0 / np.arange(2, n_tokens + 2)
    probability = inverse_rank / inverse_rank.sum()
    return sif_coefficient / (sif_coefficient + probability)


def _pca(x: np.ndarray, n_components: int) -> np.ndarray:
    """Project rows of x (n, d) onto their top principal components: (n, min(n_components, d))."""
    centred = x - x.mean(axis=0)
    _, eigenvectors = np.linalg.eigh(centred.T @ centred / max(len(x) - 1, 1))
    components = eigenvectors[:, ::-1][:, : min(n_components, x.shape[1])]
    scores = centred @ components
    # Fix each component's sign (by its largest score) so a rebuild gives the same table.
    signs = np.sign(scores[np.abs(scores).argmax(axis=0), np.arange(scores.shape[1])])
    return scores * np.where(signs == 0, 1.0, signs)


def _token_vectors(
    model_path: Path,
    token_ids: np.ndarray,
    *,
    batch_size: int,
    progress: ProgressCallback | None,
    total: int,
) -> np.ndarray:
    """Mean-pooled transformer output of ``[CLS] token [SEP]`` per token id: (n, hidden)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise ValueError(f"{model_path} has no [CLS]/[SEP] tokens: not a BERT-like tokenizer.")
    model = AutoModel.from_pretrained(str(model_path)).eval()
    out = np.empty((len(token_ids), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(token_ids), batch_size):
            batch = torch.as_tensor(token_ids[start : start + batch_size], dtype=torch.long)
            ids = torch.stack(
                [torch.full_like(batch, cls_id), batch, torch.full_like(batch, sep_id)], dim=1
            )
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            out[start : start + len(batch)] = hidden.mean(dim=1).numpy()  # no padding: plain mean
            if progress is not None:
                progress(start + len(batch), total)
    return out


def static_distill(
    model_path: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
    vocabulary_size: int | None = None,
    pca_dims: int = PCA_DIMS,
    batch_size: int = 1024,
) -> Path:
    """Distil a static embedding table from a sentence-transformers model into ``out_dir``.

    Parameters
    ----------
    model_path : str or Path or None
        A local BERT-like sentence-transformers directory; None = the bundled MiniLM.
    out_dir : str or Path
        Where the artefact goes; built in a temporary sibling and renamed. Returned at once if
        already finished.
    progress : callable, optional
        ``progress(done, total)`` over the vocabulary tokens embedded, then once at the end.
    vocabulary_size : int, optional
        Embed only the first ``vocabulary_size`` token ids (the rest get zero rows, which the
        mean ignores after normalisation); for fast tests. Default: the whole vocabulary.
    pca_dims : int, default=256
    batch_size : int, default=1024
        Tokens per forward pass.

    Returns
    -------
    Path
        ``out_dir``.
    """
    offline()
    source = Path(model_path) if model_path is not None else default_model_path()

    def build(tmp: Path) -> dict[str, Any]:
        started = time.monotonic()
        from model2vec import StaticModel
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        n_vocab = tokenizer.get_vocab_size()
        n_embedded = min(vocabulary_size or n_vocab, n_vocab)
        token_ids = np.arange(n_embedded)
        total = n_embedded + 1
        vectors = _token_vectors(
            source, token_ids, batch_size=batch_size, progress=progress, total=total
        )
        reduced = _pca(vectors.astype(np.float64), pca_dims)
        table = np.zeros((n_vocab, reduced.shape[1]), dtype=np.float32)
        table[token_ids] = reduced * sif_weights(n_vocab)[token_ids, None]
        model = StaticModel(
            vectors=table,
            tokenizer=tokenizer,
            config={"apply_pca": pca_dims, "sif_coefficient": SIF_COEFFICIENT},
            normalize=True,
            base_model_name=source.name,
        )
        model.save_pretrained(tmp)
        if progress is not None:
            progress(total, total)
        return {
            "source": str(source),
            "dimension": int(table.shape[1]),
            "tokens_embedded": int(n_embedded),
            "vocabulary_size": int(n_vocab),
            "seconds": round(time.monotonic() - started, 1),
        }

    return artifact_build_atomic(BACKEND, out_dir, build)


class StaticEncoder(ChunkedEncoder):
    """Encoder over a ``static_distill`` artefact: mean of token rows, normalised; lazy.

    A text with no known token (e.g. the empty string) gets the normalised mean of all rows, so
    every output row has unit norm.

    Parameters
    ----------
    artifact_dir : str or Path
        A finished ``static_distill`` directory.
    model_name : str
        Name used in cache keys (``backend_model_name(base, "static")``).
    chunk_size : int, default=8192
        Texts per progress report.
    num_threads : int, optional
        1 stops the tokenizer's own parallelism; numpy work is single-threaded anyway.
    """

    def __init__(
        self,
        artifact_dir: str | os.PathLike[str],
        *,
        model_name: str,
        chunk_size: int = 8192,
        num_threads: int | None = None,
    ) -> None:
        super().__init__(model_name=model_name, chunk_size=chunk_size, num_threads=num_threads)
        self.artifact_dir = Path(artifact_dir)

    def _load(self) -> Any:
        offline()
        from model2vec import StaticModel

        model = StaticModel.from_pretrained(self.artifact_dir, normalize=True)
        fallback = normalize_rows(np.asarray(model.embedding, dtype=np.float32).mean(axis=0)[None])
        return model, fallback[0]

    def _dimension(self, model: Any) -> int:
        return int(model[0].dim)

    def _encode_chunk(self, model: Any, texts: list[str]) -> np.ndarray:
        static, fallback = model
        vectors = normalize_rows(
            static.encode(texts, normalize=True, use_multiprocessing=False, batch_size=len(texts))
        )
        empty = np.linalg.norm(vectors, axis=1) < 0.5
        vectors[empty] = fallback
        return vectors
