"""Hashes both apps key things by: a text's content hash, and seeded uniform draws.

`unit_hash(*parts)` turns (seed, purpose, ids...) into a uniform float in [0, 1): the evaluation
split, the eval-or-pool draw of each claim, the serve order, overlap and the stop set all use it,
so the same project and ids always draw the same way, independent of file order and timing.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Sequence

import numpy as np

_SCALE = float(2**64)


def content_hash(text: str) -> str:
    """sha256 hex digest of the NFC-normalized text, UTF-8 encoded: 64 characters.

    The embedding cache (`active_learning.ml.hashing`, which may not import Django) computes the
    same digest; tests/test_hashing.py keeps the two equal.
    """
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8")).hexdigest()


def unit_hash(*parts: object) -> float:
    """A uniform float in [0, 1) from the parts joined by ':' (blake2b, 64 bits)."""
    key = ":".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / _SCALE


def _prefix_state(prefix: tuple[object, ...]) -> hashlib.blake2b:
    """The hash state after `"<p1>:<p2>:...:"`, copied for each last part."""
    return hashlib.blake2b("".join(f"{p}:" for p in prefix).encode(), digest_size=8)


def unit_hasher(*prefix: object) -> Callable[[object], float]:
    """`unit_hash(*prefix, last)` as a function of `last`, for hot loops over many ids (the
    prefix is hashed once; about 1 µs a call instead of 4)."""
    state = _prefix_state(prefix)

    def draw(last: object) -> float:
        h = state.copy()
        h.update(str(last).encode())
        return int.from_bytes(h.digest(), "big") / _SCALE

    return draw


def unit_hashes(*prefix: object, values: Sequence[int]) -> np.ndarray:
    """`unit_hash(*prefix, v)` for every integer `v` of `values` at once: float64, shape (n,)."""
    state = _prefix_state(prefix)

    def digest(value: int) -> bytes:
        h = state.copy()
        h.update(b"%d" % value)
        return h.digest()

    raw = b"".join(map(digest, values))
    return np.frombuffer(raw, dtype=">u8").astype(np.float64) / _SCALE
