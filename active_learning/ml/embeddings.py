"""Text embeddings: the encoder interface, the cache interface and the backends, in one place.

Vocabulary: a *text* is a str; its *content hash* is the sha256 hex of its NFC form (utf-8); an
embedding matrix has shape (n_texts, dimension), float32, rows L2-normalized. The code lives in
:mod:`~active_learning.ml.encoding` (shared loop), ``encoders_torch``, ``encoders_onnx``,
``encoders_static`` and :mod:`~active_learning.ml.encoders` (backends by name); this module
re-exports it so callers keep one import.
"""

from __future__ import annotations

from active_learning.ml.encoder_artifacts import artifact_ready
from active_learning.ml.encoders import (
    BACKENDS,
    artifact_build,
    artifact_path,
    backend_model_name,
    encoder_build,
)
from active_learning.ml.encoders_onnx import OnnxInt8Encoder, onnx_export
from active_learning.ml.encoders_static import StaticEncoder, static_distill
from active_learning.ml.encoders_torch import SentenceTransformerEncoder
from active_learning.ml.encoding import (
    DEFAULT_MODEL_NAME,
    ChunkedEncoder,
    EmbeddingCache,
    Encoder,
    InMemoryEmbeddingCache,
    ProgressCallback,
    default_model_path,
)
from active_learning.ml.hashing import content_hash

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL_NAME",
    "ChunkedEncoder",
    "EmbeddingCache",
    "Encoder",
    "InMemoryEmbeddingCache",
    "OnnxInt8Encoder",
    "ProgressCallback",
    "SentenceTransformerEncoder",
    "StaticEncoder",
    "artifact_build",
    "artifact_path",
    "artifact_ready",
    "backend_model_name",
    "content_hash",
    "default_model_path",
    "encoder_build",
    "onnx_export",
    "static_distill",
]
