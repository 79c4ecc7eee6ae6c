"""The dashboard's disk cache under WORKBENCH_DATA_DIR/dashboard/project-<pk>/ (shared storage,
so every web process reuses what one drew).

Data (JSON) is keyed by what it depends on (a model version, a count of labels); a plot (PNG) is
keyed by the hash of the data it draws, so a plot is redrawn exactly when its table changes.
Files are written to a temporary name and renamed (readers never see half a file).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from labeling.models import Project


def folder(project: Project) -> Path:
    return Path(settings.WORKBENCH_DATA_DIR) / "dashboard" / f"project-{project.pk}"


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def data_get(project: Project, key: str, *, max_age: float | None = None) -> Any:
    """The stored value, or None when missing, unreadable or older than `max_age` seconds."""
    path = folder(project) / f"{key}.json"
    try:
        if max_age is not None and time.time() - path.stat().st_mtime > max_age:
            return None
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def data_put(project: Project, key: str, value: Any) -> None:
    _write(folder(project) / f"{key}.json", json.dumps(value).encode())


def fingerprint(data: Any) -> str:
    """A short hash of JSON-able data: the plot URL's version and its file's name."""
    raw = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def plot_path(project: Project, name: str, digest: str) -> Path:
    return folder(project) / f"{name}-{digest}.png"


def plot_put(path: Path, png: bytes) -> None:
    _write(path, png)
