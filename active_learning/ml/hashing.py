"""Content hashes: the key of a text everywhere (embedding cache, stale-annotation checks)."""

from __future__ import annotations

import hashlib
import unicodedata


def content_hash(text: str) -> str:
    """sha256 hex digest of the NFC-normalized text, UTF-8 encoded: 64 characters."""
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8")).hexdigest()
