"""Fault injection for the crash tests: a named point sleeps when WORKBENCH_FAULTS asks it to.

`WORKBENCH_FAULTS="train=30"` makes `fault_point("train")` sleep 30 s, which gives a test a
window to SIGKILL the worker mid-step. Unset (always, outside tests), it does nothing. Points:
`train` (active_learning), `export` (labeling.services.exports, after the first page).
"""

from __future__ import annotations

import os
import time


def fault_point(name: str) -> None:
    spec = os.environ.get("WORKBENCH_FAULTS", "")
    for part in filter(None, spec.split(",")):
        key, _, seconds = part.partition("=")
        if key.strip() == name:
            time.sleep(float(seconds or 0))
