"""Embedding backends by name: which encoder a project uses, its cache name and its artefact.

Backends: ``"torch"`` (sentence-transformers, the reference), ``"onnx-int8"`` (ONNX Runtime,
int8 weights) and ``"static"`` (a distilled token table). Vectors of different backends never
mix: each encodes under its own model name, ``backend_model_name(base, backend)``.
"""

from __future__ import annotations

import os
from pathlib import Path

from active_learning.ml.encoder_artifacts import artifact_ready
from active_learning.ml.encoders_onnx import OnnxInt8Encoder, onnx_export
from active_learning.ml.encoders_static import StaticEncoder, static_distill
from active_learning.ml.encoders_torch import SentenceTransformerEncoder
from active_learning.ml.encoding import ChunkedEncoder, ProgressCallback

__all__ = [
    "BACKENDS",
    "artifact_build",
    "artifact_path",
    "artifact_ready",
    "backend_model_name",
    "encoder_build",
]

BACKENDS = ("torch", "onnx-int8", "static")
ARTEFACT_BACKENDS = ("onnx-int8", "static")

UNKNOWN_BACKEND = "Unknown embedding backend {backend!r}; expected one of {choices}."
NOT_BUILT = (
    "The {backend} artefact is not built in {path}: run the {backend} build job "
    "(onnx_export / static_distill) first."
)


def _check(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(UNKNOWN_BACKEND.format(backend=backend, choices=", ".join(BACKENDS)))


def backend_model_name(base: str, backend: str) -> str:
    """The name a backend's vectors are stored under.

    ``base`` unchanged for ``"torch"`` (vectors stored before backends existed stay valid),
    else ``"{base}@{backend}"``. Raises ValueError for an unknown backend.
    """
    _check(backend)
    return base if backend == "torch" else f"{base}@{backend}"


def artifact_path(artifacts_dir: str | os.PathLike[str], backend: str) -> Path:
    """Where a backend's artefact lives under a data directory: ``artifacts_dir / backend``."""
    _check(backend)
    return Path(artifacts_dir) / backend


def artifact_build(
    backend: str,
    *,
    artifacts_dir: str | os.PathLike[str],
    model_path: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
) -> Path | None:
    """Build the backend's artefact in ``artifact_path(artifacts_dir, backend)`` if missing.

    Returns its directory, or None for ``"torch"`` (which needs none).
    """
    _check(backend)
    if backend == "torch":
        return None
    build = onnx_export if backend == "onnx-int8" else static_distill
    return build(model_path, artifact_path(artifacts_dir, backend), progress=progress)


def encoder_build(
    backend: str,
    *,
    model_path: str | os.PathLike[str] | None = None,
    artifacts_dir: str | os.PathLike[str],
    model_name: str,
    num_threads: int | None = None,
) -> ChunkedEncoder:
    """An unloaded encoder for ``backend``.

    Parameters
    ----------
    backend : {"torch", "onnx-int8", "static"}
    model_path : str or Path, optional
        The sentence-transformers model for ``"torch"``; None = the bundled MiniLM.
    artifacts_dir : str or Path
        The data directory holding ``<backend>/`` artefacts (an artefact directory itself is
        accepted too).
    model_name : str
        Cache name, normally ``backend_model_name(base, backend)``.
    num_threads : int, optional

    Raises
    ------
    ValueError
        For an unknown backend, or when the backend's artefact is not built.
    """
    _check(backend)
    if backend == "torch":
        return SentenceTransformerEncoder(
            model_path, model_name=model_name, num_threads=num_threads
        )
    directory = artifact_path(artifacts_dir, backend)
    if not artifact_ready(backend, directory) and artifact_ready(backend, artifacts_dir):
        directory = Path(artifacts_dir)
    if not artifact_ready(backend, directory):
        raise ValueError(NOT_BUILT.format(backend=backend, path=directory))
    if backend == "onnx-int8":
        return OnnxInt8Encoder(directory, model_name=model_name, num_threads=num_threads)
    return StaticEncoder(directory, model_name=model_name, num_threads=num_threads)
