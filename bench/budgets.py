"""Time and memory budgets the tests used to assert: measured here, on a quiet machine.

- demo load: `demo_project_ensure` writes the demo's 5,000 generated cases into a fresh
  embedded-default database (SQLite in a temporary var folder), budget 20 s;
- chunked selection: peak traced memory of `select_uncertainty` (entropy, chunks of 1,000 rows)
  over a 200,000 x 5 probability matrix (4 MB), budget 2 MB;
- synthetic stream: peak traced memory of iterating 5,000 generated records, budget 1 MiB.

Prints each figure against its budget, writes bench/results/budgets.json, exits 1 when one is
over. About a minute.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import write_result  # noqa: E402

DEMO_SECONDS = 20.0  # for the demo's 5,000 cases
SELECTION_PEAK_BYTES = 2_000_000  # the pool is 4 MB; a chunk of 1,000 rows is a few tens of kB
STREAM_PEAK_BYTES = 1024 * 1024


def selection_peak() -> int:
    import numpy as np

    from active_learning.ml import strategies as st

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(200_000, 5)).astype(np.float32)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    tracemalloc.start()
    try:
        st.select_uncertainty(proba, 50, measure="entropy", chunk_size=1_000, random_state=0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def stream_peak() -> int:
    from labeling.synthetic import iter_records

    tracemalloc.start()
    try:
        for _ in iter_records(5_000, seed=2, noise=0.2):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def demo_load_seconds(var_dir: Path) -> tuple[float, int]:
    """Seconds `demo_project_ensure` takes on a fresh embedded default, and the cases it wrote."""
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "BROKER_KEY_PREFIX"):
        os.environ.pop(name, None)
    os.environ["WORKBENCH_VAR_DIR"] = str(var_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0", "--skip-checks"],
        cwd=ROOT,
        check=True,
        env=os.environ,
    )
    import django

    django.setup()
    from labeling.services.demo import demo_project_ensure, demo_users_ensure

    demo_users_ensure(credentials_path=var_dir / "creds.json")
    started = time.perf_counter()
    project = demo_project_ensure()
    return time.perf_counter() - started, project.cases.count()


def main() -> int:
    argparse.ArgumentParser(description=__doc__).parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-budgets-") as tmp:
        seconds, cases = demo_load_seconds(Path(tmp) / "var")
    figures = {
        "demo_load_seconds": (round(seconds, 2), DEMO_SECONDS),
        "selection_peak_bytes": (selection_peak(), SELECTION_PEAK_BYTES),
        "stream_peak_bytes": (stream_peak(), STREAM_PEAK_BYTES),
    }
    over = [name for name, (value, budget) in figures.items() if value >= budget]
    for name, (value, budget) in figures.items():
        flag = "  OVER" if name in over else ""
        print(f"{name:22s} {value:>14,} (budget {budget:,}){flag}")
    path = write_result(
        "budgets",
        {
            "demo_cases": cases,
            "figures": {n: {"value": v, "budget": b} for n, (v, b) in figures.items()},
            "over_budget": over,
        },
    )
    print(f"written to {path}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
