"""Content hashes: the key of a text everywhere (embedding cache, stale-annotation checks)."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence

import numpy as np


def content_hash(text: str) -> str:
    """sha256 hex digest of the NFC-normalized text, UTF-8 encoded: 64 characters."""
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8")).hexdigest()


def hash_keys(hashes: Sequence[str]) -> np.ndarray:
    """Integer keys of content hashes (their first 60 bits), shape (len(hashes),), int64."""
    return np.fromiter((int(h[:15], 16) for h in hashes), dtype=np.int64, count=len(hashes))
