"""Files a fast backend needs (an ONNX model, a static embedding table), built once, atomically.

An *artefact* is a directory holding the backend's files plus ``manifest.json``, written last; a
directory is *ready* when its manifest names the backend. It is built in a hidden temporary
sibling and renamed into place, so an interrupted build never leaves a ready-looking directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST", "artifact_build_atomic", "artifact_manifest", "artifact_ready"]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
STALE_BUILD_SECONDS = 24 * 3600  # a build takes minutes; older temporary folders were killed runs


def artifact_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a finished artefact directory, or None when it is absent or unreadable."""
    path = Path(out_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def artifact_ready(backend: str, out_dir: str | os.PathLike[str]) -> bool:
    """Whether ``out_dir`` holds a finished artefact of ``backend`` in the current format."""
    manifest = artifact_manifest(out_dir)
    return (
        manifest is not None
        and manifest.get("backend") == backend
        and manifest.get("format_version") == FORMAT_VERSION
    )


def artifact_build_atomic(
    backend: str,
    out_dir: str | os.PathLike[str],
    build: Callable[[Path], dict[str, Any]],
) -> Path:
    """Run ``build(tmp_dir)`` in a temporary sibling of ``out_dir`` and move the result into place.

    ``build`` writes the backend's files into ``tmp_dir`` and returns facts for the manifest.
    Returns ``out_dir`` at once if it is already ready. If two builds race, the first rename wins
    and the other's files are discarded. Raises whatever ``build`` raises, leaving no trace.
    """
    out = Path(out_dir)
    if artifact_ready(backend, out):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{out.name}.building-"
    _remove_stale_builds(out.parent, prefix)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))
    try:
        facts = build(tmp)
        manifest = {"backend": backend, "format_version": FORMAT_VERSION, **facts}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if out.exists() and not artifact_ready(backend, out):
            shutil.rmtree(out)  # a stale directory from an older format or a foreign copy
        try:
            os.rename(tmp, out)
        except OSError:
            if not artifact_ready(backend, out):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another build finished first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _remove_stale_builds(parent: Path, prefix: str) -> None:
    """Delete temporary folders that killed builds (SIGKILL, lost machine) left behind."""
    now = time.time()
    for path in parent.glob(f"{prefix}*"):
        try:
            if now - path.stat().st_mtime > STALE_BUILD_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue  # another process removed it first
