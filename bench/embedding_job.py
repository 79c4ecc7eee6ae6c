"""Embedding through the product's job, end to end, per backend (PostgreSQL).

A scratch database `bench_embed` (created and dropped here) holds one project of N generated
merchants (100,000 by default, loaded with COPY). For each backend the project is switched to it
and its vectors are deleted, then `embedding_run` runs the real embedding job in this process
(2 threads, no fan-out: what one 2-core worker does): reading texts, encoding, storing every
vector in the database, syncing the matrix file. The encoder's one-off export or distillation is
timed apart. The time per 1,000,000 cases is the measured time scaled linearly. The torch
backend, the baseline of the same run, embeds `--torch-limit` cases (its rate is what matters).
Targets at 1,000,000 cases on 2 cores: static <= 5 min, ONNX int8 <= 25 min.
Writes bench/results/embedding_job.json and .png.

    .venv/bin/python bench/embedding_job.py [--cases 100000] [--torch-limit 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_PG_DB", "bench_embed")
TARGET_MINUTES_1M = {"static": 5.0, "onnx-int8": 25.0}
SLUG = "bench-embed"


def load(n: int) -> int:
    """The project with `n` generated merchants (COPY); returns its id."""
    from django.db import connection

    from active_learning.ml.hashing import content_hash
    from labeling.models import LabelClass, Project
    from labeling.synthetic import iter_records

    project = Project.objects.create(name="Embedding bench", slug=SLUG)
    label = LabelClass.objects.create(project=project, name="legit", shortcut_key="1")
    now = datetime.now(UTC)
    with (
        connection.connection.cursor() as cur,
        cur.copy(
            "COPY labeling_case (project_id, external_id, text, metadata, given_label_id, "
            "given_label_source, split, content_hash, imported_at, updated_at, changed_at) FROM STDIN"
        ) as copy,
    ):
        for i, r in enumerate(iter_records(n, seed=3)):
            text = f"{r.business_name}: {r.description}"  # distinct texts, as real imports are
            row = (project.pk, f"M{i:09d}", text, json.dumps({}), label.pk, "import")
            copy.write_row((*row, "pool", content_hash(text), now, now, now))
    return project.pk


def run_backend(project_id: int, backend: str, limit: int | None) -> dict[str, float | int | str]:
    from active_learning.models import Embedding
    from active_learning.services import embeddings
    from active_learning.services.embedding_jobs import embedding_run, embedding_start
    from labeling.models import Case, Project
    from workbench.core.models import Job

    Project.objects.filter(pk=project_id).update(embedding_backend=backend, embedding_model="")
    project = Project.objects.get(pk=project_id)
    model_name = embeddings.model_name_selected(project)
    started = time.perf_counter()
    embeddings.encoder_prepare(model_name)
    prepare = time.perf_counter() - started
    encoder = embeddings.encoder_get(model_name)
    encoder.encode(["warm-up text"])  # loads the model: not part of the per-case cost
    Embedding.objects.filter(model_name=model_name).delete()
    shutil.rmtree(embeddings.matrix_dir(model_name), ignore_errors=True)
    n = Case.objects.filter(project_id=project_id).count()
    if limit is not None and limit < n:
        # Only the first `limit` cases lack vectors: store placeholders for the rest, so the
        # job embeds `limit` texts with every other cost as in a full run.
        n = limit
        skip = Case.objects.filter(project_id=project_id).order_by("pk")[limit:]
        dim = encoder.dimension
        blob = b"\0" * (4 * dim)
        Embedding.objects.bulk_create(
            (
                Embedding(model_name=model_name, content_hash=h, dim=dim, vector=blob)
                for h in skip.values_list("content_hash", flat=True).iterator()
            ),
            batch_size=5000,
        )
    Job.objects.filter(project_id=project_id).delete()
    job = embedding_start(project=project, reason="bench")
    assert job is not None
    started = time.perf_counter()
    result = embedding_run(job_id=job.pk)
    seconds = time.perf_counter() - started
    assert result is not None and result["left"] == 0, result
    per_million = seconds * 1_000_000 / n / 60
    row: dict[str, float | int | str] = {
        "backend": backend,
        "cases": n,
        "seconds": round(seconds, 1),
        "texts_per_second": round(n / seconds, 1),
        "minutes_per_million": round(per_million, 1),
        "prepare_seconds": round(prepare, 1),
        "dimension": int(encoder.dimension),
    }
    print(
        f"{backend:10s} {n:>7,} cases {seconds:7.1f} s  {n / seconds:7.0f} texts/s  "
        f"1M ~ {per_million:5.1f} min  (encoder prepared in {prepare:.0f} s)",
        flush=True,
    )
    return row


def plot(rows: list[dict[str, float | int | str]], name: str) -> None:
    """Minutes per million cases per backend, with the targets in red."""
    from bench.common import new_figure, save_figure

    fig, ax = new_figure(figsize=(6, 3.2))
    backends = [str(r["backend"]) for r in rows]
    ax.barh(backends, [float(r["minutes_per_million"]) for r in rows], color="#4c72b0")
    for i, backend in enumerate(backends):
        if backend in TARGET_MINUTES_1M:
            ax.plot([TARGET_MINUTES_1M[backend]] * 2, [i - 0.4, i + 0.4], "r-")
    ax.set_xscale("log")
    ax.set_xlabel("minutes per million cases, embedding job, 2 cores (red: target)")
    save_figure(fig, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--torch-limit", type=int, default=10_000)
    parser.add_argument("--backends", nargs="+", default=["static", "onnx-int8", "torch"])
    parser.add_argument(
        "--quick", action="store_true", help="5,000 cases (500 for torch), *_quick results"
    )
    args = parser.parse_args()
    if args.quick:
        args.cases, args.torch_limit = 5000, 500
    name = "embedding_job_quick" if args.quick else "embedding_job"

    from bench.common import (
        scratch_database_create,
        scratch_database_drop,
        scratch_environment,
        write_result,
    )

    data_dir = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    scratch_environment(SERVER, DB_NAME, data_dir)
    os.environ["WORKER_THREADS"] = "2"  # one 2-core worker
    # Where the encoders' one-off exports live between runs (they are not what is measured).
    os.environ.setdefault("BENCH_ENCODERS", str(ROOT / "var" / "bench-encoders"))
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
    scratch_database_create(SERVER, DB_NAME)
    import django

    django.setup()
    encoders = Path(os.environ["BENCH_ENCODERS"])
    encoders.mkdir(parents=True, exist_ok=True)
    (data_dir / "encoders").symlink_to(encoders, target_is_directory=True)
    try:
        started = time.perf_counter()
        project_id = load(args.cases)
        print(f"loaded {args.cases:,} cases in {time.perf_counter() - started:.0f} s", flush=True)
        rows = [
            run_backend(project_id, b, args.torch_limit if b == "torch" else None)
            for b in args.backends
        ]
    finally:
        from django.db import connections

        connections.close_all()
        scratch_database_drop(SERVER, DB_NAME)
        shutil.rmtree(data_dir, ignore_errors=True)
    torch = next((r for r in rows if r["backend"] == "torch"), None)
    for r in rows:
        if torch is not None:
            r["speedup_vs_torch"] = round(
                float(r["texts_per_second"]) / float(torch["texts_per_second"]), 2
            )
        target = TARGET_MINUTES_1M.get(str(r["backend"]))
        if target is not None:
            r["target_minutes_per_million"] = target
            r["meets_target"] = float(r["minutes_per_million"]) <= target
    write_result(name, {"cases": args.cases, "threads": 2, "rows": rows})
    plot(rows, name)


if __name__ == "__main__":
    main()
