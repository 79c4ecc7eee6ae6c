"""Content hashes (the key of a text everywhere: embedding cache, stale-annotation checks) and
seeded per-id draws (a case keeps its fold or sample rank whatever else is in the array)."""

from __future__ import annotations

import hashlib
import unicodedata

import numpy as np


def content_hash(text: str) -> str:
    """sha256 hex digest of the NFC-normalized text, UTF-8 encoded: 64 characters."""
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8")).hexdigest()


def id_hash(case_ids: np.ndarray, seed: int) -> np.ndarray:
    """A seeded pseudo-random value in [0, 1) per case id (splitmix64), the same for an id
    whatever array it sits in."""
    x = (np.asarray(case_ids, dtype=np.uint64) + np.uint64(seed % 2**63)) * np.uint64(
        0x9E3779B97F4A7C15
    )
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return np.asarray(x >> np.uint64(11), dtype=np.float64) / float(2**53)
