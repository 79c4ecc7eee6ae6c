"""Stopping a worker process within a bound: a SIGTERM asks its running jobs to stop.

A stop request sets a process-wide flag that long steps check between units of work
(`raise_if_stopping` raises `WorkerStopping`), so the job is handed back cleanly. A step that
never checks is abandoned by a watchdog after `grace` seconds: it hands back (or fails) the
process's jobs, frees their leases and ends the process, so no worker outlives a stop request
by more than WORKER_STOP_SECONDS. `die_with_parent` ties a child process's life to its parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

_STOP = threading.Event()
_PR_SET_PDEATHSIG = 1
_CLEANUP_SECONDS = 5.0  # the watchdog's database writes get this long before the exit


class WorkerStopping(Exception):
    """Raised inside a job when its worker has been asked to stop."""


ERR_STOPPING = "the worker was asked to stop"


def stop_requested() -> bool:
    return _STOP.is_set()


def raise_if_stopping() -> None:
    """Call between units of work: leaves the step when the worker must stop."""
    if _STOP.is_set():
        raise WorkerStopping(ERR_STOPPING)


def stop_request(*, grace: float) -> None:
    """Ask this process's jobs to stop; after `grace` seconds abandon them and exit (once)."""
    if _STOP.is_set():
        return
    _STOP.set()
    threading.Thread(target=_watchdog, args=(grace,), name="stop-watchdog", daemon=True).start()


def _watchdog(grace: float) -> None:
    time.sleep(grace)
    log.error("worker still busy %.0f s after the stop request: abandoning its jobs", grace)
    from workbench.core.jobs import jobs_abandon_current

    cleanup = threading.Thread(target=jobs_abandon_current, daemon=True)
    cleanup.start()
    cleanup.join(timeout=_CLEANUP_SECONDS)  # a database that does not answer must not hold us
    children_signal(signal.SIGKILL)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def children_signal(sig: int) -> None:
    """Send `sig` to this process's pool children (a Celery prefork worker's)."""
    from billiard.process import active_children

    for child in active_children():
        if child.pid:
            with contextlib.suppress(OSError):
                os.kill(child.pid, sig)


def die_with_parent(sig: int = signal.SIGTERM, *, parent_pid: int | None = None) -> None:
    """Have the kernel send `sig` to this process when its parent dies (Linux; else nothing).

    Called in the child. With `parent_pid`, a parent that died before the call is noticed too.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no prctl: live as before
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)
