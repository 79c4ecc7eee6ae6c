"""The manifest beside an export (`<file>.manifest.json`) and how an import recognises one.

The manifest holds the row count, sha256 and size of each file, the project, the champion's
version, the time and the options. `export_manifest_for(path)` returns it when it names this
file and the file's size and sha256 still match: then the import knows the file is an export.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from labeling.services.exports.schema import MANIFEST_KIND

MANIFEST_SUFFIX = ".manifest.json"
ANNOTATIONS_SUFFIX = ".annotations.csv"


def manifest_path_for(path: Path) -> Path:
    return path.with_name(path.name + MANIFEST_SUFFIX)


def annotations_path_for(path: Path) -> Path:
    return path.with_name(path.stem + ANNOTATIONS_SUFFIX)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write it under a temporary name, then rename: a reader never sees half a manifest."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as file:
            json.dump(manifest, file, indent=2, ensure_ascii=False)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def export_manifest_for(path: Path, *, file_name: str | None = None) -> dict[str, Any] | None:
    """The export manifest beside `path` when it describes this very file, else None."""
    path = Path(path)
    manifest_path = manifest_path_for(path)
    try:
        with open(manifest_path, encoding="utf-8") as file:
            manifest = json.load(file)
        size = path.stat().st_size
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
        return None
    if manifest.get("file") not in (path.name, file_name) or manifest.get("bytes") != size:
        return None
    if manifest.get("sha256") != file_sha256(path):
        return None
    return manifest
