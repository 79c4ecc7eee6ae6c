"""Locks that die with their holder: for short critical sections shared by workers.

A lease row outlives a SIGKILLed worker until it expires; these do not. On PostgreSQL a
session-level advisory lock is released by the server when the holder's connection drops; on
the embedded default (one machine) an `flock` on a file is released by the kernel when the
process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path

from django.db import connection


def _key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


@contextlib.contextmanager
def exclusive(name: str, *, folder: Path) -> Iterator[None]:
    """Hold the lock `name` for the block (waits for it); `folder` holds the SQLite lock file."""
    if connection.vendor == "postgresql":
        key = _key(name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f".{hashlib.sha1(name.encode()).hexdigest()[:16]}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
