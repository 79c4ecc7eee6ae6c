"""Model files: skops format (never pickle), written atomically, loaded against an allow-list.

A file is refused when it names any type that skops does not trust by default and that is not in
:data:`ALLOWED_TYPES` (or the caller's ``extra_trusted``); nothing in it is imported or built then.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import skops.io as sio

__all__ = ["ALLOWED_TYPES", "UntrustedModelError", "load_model", "save_model", "untrusted_types"]

ALLOWED_TYPES: frozenset[str] = frozenset(
    {
        # CalibratedClassifierCV internals (STACK.md §2f).
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.calibration._TemperatureScaling",
        # MLPClassifier keeps its optimizer state.
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        # This package's wrappers.
        "active_learning.ml.calibration.CalibratedClassifier",
        "active_learning.ml.classifiers.AlignedClassifier",
        "active_learning.ml.classifiers.TunedLogisticRegression",
    }
)
UNTRUSTED_MESSAGE = "Model file {path} contains types outside the allow-list: {types}."


class UntrustedModelError(ValueError):
    """A model file names a type outside the allow-list."""

    def __init__(self, path: str | os.PathLike[str], types: Iterable[str]) -> None:
        self.path = str(path)
        self.types = sorted(types)
        super().__init__(UNTRUSTED_MESSAGE.format(path=self.path, types=", ".join(self.types)))


def save_model(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` in skops format, atomically.

    The bytes go to a temporary file in the same directory, are fsynced, and the file is renamed
    over ``path`` (``os.replace``), so readers see the old file or the new one, never a part.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = sio.dumps(model)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable where directories can be synced
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target


def untrusted_types(path: str | os.PathLike[str]) -> list[str]:
    """Types named in the file that skops does not trust by default (nothing is loaded)."""
    return list(sio.get_untrusted_types(file=Path(path)))


def load_model(path: str | os.PathLike[str], *, extra_trusted: Iterable[str] = ()) -> Any:
    """Load a model written by :func:`save_model`.

    Raises
    ------
    UntrustedModelError
        When the file names a type outside ``ALLOWED_TYPES | extra_trusted``.
    """
    found = untrusted_types(path)
    refused = set(found) - ALLOWED_TYPES - set(extra_trusted)
    if refused:
        raise UntrustedModelError(path, refused)
    return sio.load(Path(path), trusted=found)
