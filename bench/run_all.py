"""Run every benchmark, one after another (they need the machine to themselves).

`python bench/run_all.py` runs the full set (about two hours on 2 cores);
`--quick` passes each script's own quick mode where it has one; `--only a,b` picks scripts.
Each script prints its figures and writes bench/results/<name>.json (and a PNG).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (script, full arguments, quick arguments); PostgreSQL-backed ones create scratch databases.
BENCHMARKS = [
    ("embedding_speed", [], ["--quick"]),
    ("calibration", [], ["--n-bootstrap", "100"]),
    ("al_curve", [], ["--quick"]),
    ("noise_detection", [], ["--quick"]),
    ("embedding_job", [], ["--quick"]),
    ("import_speed", [], ["--rows", "100000"]),
    ("queue_latency", ["--http"], ["--quick"]),
    ("queue_refill", [], ["--cases", "100000"]),
    ("case_search", [], ["--cases", "100000", "--repeats", "20"]),
    ("dashboard_speed", [], ["--cases", "100000", "--repeats", "10"]),
    ("pipeline", [], ["--quick"]),
    ("cleaning", [], ["--quick"]),
    ("consensus", [], ["--cases", "1000", "--overlap-cases", "1000", "--overlap-labels", "300"]),
    ("loop", [], ["--quick"]),
    ("budgets", [], []),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated script names")
    args = parser.parse_args()
    only = {name for name in args.only.split(",") if name}
    failed = []
    for name, full, quick in BENCHMARKS:
        if only and name not in only:
            continue
        command = [sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        code = subprocess.call(command, cwd=HERE.parent)
        print(f"=== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nFailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
