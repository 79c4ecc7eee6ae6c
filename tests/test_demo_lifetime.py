"""`manage.py demo` never leaves a process behind, even when it is itself killed mid-retrain.

The demo starts web, worker and beat in sessions of their own (so a Ctrl-C reaches them only
through the demo); the kernel must still stop them when the demo dies by SIGKILL, and the
worker must hand its retrain back rather than finish it first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker import ROOT, service_env

pytestmark = pytest.mark.worker

STOP_BOUND = 30  # seconds: the bound for a worker asked to stop mid-retrain


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":  # a zombie is gone, only not yet reaped
                tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            if (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.add(pid)
    return alive


def _retrain(db: Path) -> tuple[str, str] | None:
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        row = conn.execute(
            "SELECT status, message FROM active_learning_job WHERE kind = 'retrain' "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return None if row is None else (row[0], row[1])


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[dict]:
    """`manage.py demo` on a free port with its own var folder; every process killed after."""
    env = service_env(
        DATABASE_URL=None,
        CELERY_BROKER_URL=None,
        WORKBENCH_MODE="demo",
        WORKBENCH_VAR_DIR=str(tmp_path / "var"),
    )
    out = tmp_path / "demo.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--port", str(_free_port())],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    seen: set[int] = set()
    try:
        yield {"proc": proc, "out": out, "var": tmp_path / "var", "seen": seen}
    finally:
        for pid in _alive(seen | _descendants(proc.pid) | {proc.pid}):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _start_retraining(demo: dict) -> set[int]:
    """Wait until the demo serves and its first retrain runs; returns the demo's descendants."""
    proc, out = demo["proc"], demo["out"]
    deadline = time.monotonic() + 180
    while b"The workbench is running" not in out.read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
        time.sleep(0.5)
    db = demo["var"] / "db.sqlite3"
    while (_retrain(db) or ("", ""))[0] != "running":
        assert time.monotonic() < deadline, _retrain(db)
        time.sleep(0.5)
    time.sleep(3)  # into the embedding, with the pool child busy
    tree = _descendants(proc.pid)
    demo["seen"].update(tree)
    # gunicorn master + 2 workers, celery worker + its pool child, beat
    assert len(tree) >= 6, tree
    return tree


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_demo_stops_every_process_it_started(demo: dict, sig: int) -> None:
    """Killed (or terminated) mid-retrain, the demo leaves no process running within 30 s,
    and the retrain is handed back for the next start rather than left running."""
    tree = _start_retraining(demo)
    killed = time.monotonic()
    os.kill(demo["proc"].pid, sig)
    while _alive(tree):
        took = time.monotonic() - killed
        assert took < STOP_BOUND, f"still running {took:.0f} s after the kill: {_alive(tree)}"
        time.sleep(0.5)
    demo["proc"].wait(timeout=STOP_BOUND)
    status, message = _retrain(demo["var"] / "db.sqlite3") or ("", "")
    assert status == "queued" and message.startswith("Handed back"), (status, message)
    with contextlib.closing(sqlite3.connect(demo["var"] / "db.sqlite3")) as conn:
        assert conn.execute("SELECT count(*) FROM active_learning_lease").fetchone() == (0,)
