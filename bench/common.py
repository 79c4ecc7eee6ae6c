"""Shared benchmark helpers: read Banking77 in place, cache embeddings, write JSON results and plots.

Banking77 is read from ``../shared/datasets/banking77`` (override with ``BANKING77_DIR``) and never
copied. Results go to ``bench/results/<name>.json`` and ``.png`` (or to ``BENCH_RESULTS_DIR``);
embedding caches to ``bench/results/.cache/`` (float32 ``.npy`` files named by model and content
hash).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# BENCH_RESULTS_DIR sends a run's JSON and PNG elsewhere (bench/compare_commits.py gives each side
# of a comparison its own); the embedding cache stays in bench/results/.cache either way.
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS_DIR") or ROOT / "bench" / "results")
CACHE_DIR = ROOT / "bench" / "results" / ".cache"
DATASET_DIR = Path(
    os.environ.get("BANKING77_DIR", ROOT.parent / "shared" / "datasets" / "banking77")
)

if str(ROOT) not in sys.path:  # run as `python bench/x.py` from the project root
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load_banking77(split: str) -> tuple[list[str], list[str]]:
    """Return ``(texts, labels)`` of Banking77's ``train`` or ``test`` split (read-only)."""
    path = DATASET_DIR / f"{split}.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def cached_embeddings(
    texts: Sequence[str], model_name: str, encode: Callable[[Sequence[str]], np.ndarray]
) -> np.ndarray:
    """Embeddings of ``texts`` from the cache, computing and storing them on a miss.

    Returns
    -------
    ndarray of shape (len(texts), dimension), float32
    """
    digest = hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()[:16]
    path = CACHE_DIR / f"{model_name}-{digest}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.asarray(encode(texts), dtype=np.float32)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    os.replace(tmp, path)
    return vectors


def psql(server: str, sql: str) -> None:
    """Run one statement against the server's `postgres` database (server: postgres://host:port)."""
    subprocess.run(
        ["psql", f"{server}/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        capture_output=True,
    )


def scratch_database_create(server: str, name: str) -> None:
    """A new, migrated database `name` (dropped first if a run left it): the benchmark's own.

    The caller has pointed DATABASE_URL at it; migrations run in a child process with that
    environment, before this process sets Django up.
    """
    psql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(server, f"CREATE DATABASE {name}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0", "--skip-checks"],
        cwd=ROOT,
        check=True,
        env=os.environ,
    )


def scratch_environment(server: str, name: str, data_dir: Path) -> None:
    """Point this process (and the migrations' child) at the scratch database `name` and data
    folder, with no Celery worker: the retrain chain runs in-process (`retrain_run`). Call before
    Django is set up."""
    os.environ["DATABASE_URL"] = f"{server}/{name}"
    os.environ["WORKBENCH_DATA_DIR"] = str(data_dir)
    os.environ["PIPELINE_FANOUT"] = "0"  # the chain embeds in-process, not in a Celery group
    os.environ["WORKER_THREADS"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")


def retrain_run(project: Any, *, reason: str | None = None) -> tuple[Any, dict[str, Any]] | None:
    """Run the retrain the product queued for `project` in-process (its broker message is never
    read here); with `reason`, ask for one when none is queued. Returns the job and the chain's
    result, None when none ran."""
    from active_learning.services.retrain import KIND, retrain_project
    from active_learning.services.retrain_requests import retrain_request
    from workbench.core.models import Job, JobStatus

    job = Job.objects.filter(project=project, kind=KIND, status=JobStatus.QUEUED).first()
    if job is None and reason is not None:
        job = retrain_request(project=project, reason=reason)
    if job is None:
        return None
    return job, retrain_project(job=job)


def truth_of(project: Any) -> dict[int, int]:
    from labeling.models import SyntheticTruth

    return dict(
        SyntheticTruth.objects.filter(case__project=project).values_list("case_id", "true_label_id")
    )


def dataset_state(project: Any, truth: dict[int, int]) -> dict[str, Any]:
    """How many cases carry their true label now (resolved label, else given label); `truth`
    maps case id to true label id."""
    from labeling.models import Case

    correct = excluded = 0
    rows = Case.objects.filter(project=project).values_list(
        "pk", "given_label_id", "resolved__label_id", "resolved__source", "resolved__excluded"
    )
    for pk, given, label, source, is_excluded in rows:
        if is_excluded:
            excluded += 1
            continue
        current = given if source is None else label
        correct += int(current == truth[pk])
    return {"correct": correct, "excluded": excluded, "cases": len(truth)}


REVIEWER_ACCURACY = 0.98


class Reviewer:
    """A simulated reviewer: the truth `accuracy` of the time, else a uniformly drawn other class
    (answers are class ids)."""

    def __init__(self, class_ids: list[int], seed: int, accuracy: float = REVIEWER_ACCURACY):
        self.class_ids = class_ids
        self.accuracy = accuracy
        self.rng = random.Random(seed)

    def answer(self, true_label: int) -> int:
        if self.rng.random() < self.accuracy:
            return true_label
        return self.rng.choice([c for c in self.class_ids if c != true_label])


def review_decide(
    item: Any, user: Any, person: Reviewer, true_label: int, given: int | None
) -> Any:
    """`person`'s decision on a review or adjudication item through `review_submit`: keep the
    given label, accept the suggestion or relabel, whichever their answer is; the decision."""
    from labeling.services.annotations import Verdict, review_submit

    answer = person.answer(true_label)
    if answer == given:
        verdict, label = Verdict.CONFIRM, None
    elif answer == item.suggestion_id:
        verdict, label = Verdict.ACCEPT, None
    else:
        verdict, label = Verdict.RELABEL, answer
    return review_submit(
        item=item,
        reviewer=user,
        submission_id=uuid.uuid4(),
        verdict=verdict,
        label=label,
        apply_group=bool(item.group),
    )


def scratch_database_drop(server: str, name: str) -> None:
    from django.db import connections

    connections.close_all()
    psql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """Measure wall time: ``with timer() as t: ...`` then ``t["seconds"]``."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start


def labels_to_reach(sizes: Sequence[int], values: Sequence[float], target: float) -> int | None:
    """First label count whose value reaches ``target`` (None if never): ``sizes`` ascending, one
    value each."""
    for n, v in zip(sizes, values, strict=True):
        if v >= target:
            return int(n)
    return None


def environment() -> dict[str, Any]:
    """Machine facts recorded next to every result."""
    import sklearn

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (with the environment) and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    body = {"benchmark": name, "environment": environment(), **payload}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def new_figure(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``plt.subplots`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig: Any, name: str) -> Path:
    """Save ``bench/results/<name>.png`` and close the figure."""
    import matplotlib.pyplot as plt

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
