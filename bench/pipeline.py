"""Pipeline steps at 10,000, 100,000 and 1,000,000 cases on PostgreSQL: wall time and peak memory.

A scratch database (default `bench_pipeline` on postgres://postgres@127.0.0.1:5432/, created,
migrated and dropped here) is bulk-loaded with COPY for each size: N generated-merchant cases
(2,000 generated records repeated with new ids and a store number, so every text and content hash
is distinct; given labels carry the generator's 20% noise), one Embedding row per case and a few
hundred analysts' labels (300 pool, 300 evaluation). Vectors are synthetic at every size: the
real MiniLM vector of the case's base record plus Gaussian noise, renormalized, written straight
into the Embedding table; real encoding is timed separately below. Then each step of a retrain is
timed on its own, with the peak resident memory of this process while it runs:

  matrix_sync        the matrix file rebuilt from the Embedding table (file deleted first)
  embedding_view_only  the step below with the neighbour and wording views switched off: the
                     detector before issue 20, the baseline of its cost (same run, same data)
  find_label_issues  out-of-fold confident learning over every labelled pool case (with the
                     near-duplicate groups of the prune set)
  review_items       review items for the best prune-set cases, noise estimate of the labels
  train_model        tuned, calibrated logistic regression + evaluation (+ promotion decision)
  score_pool         predict every case + write compact/top-k predictions with COPY
  predictions_prune  steady state: the third champion's prune (oldest one's compact rows go)
  refresh_queue      cancel untouched items, select 4 batches (diversity), similar cases, insert

score_pool is the third champion's scoring (two earlier versions' rows already in the table), so
the prune that follows really deletes a version's compact rows: the steady state of a retrain.

Also: the embed step through real Celery workers on Redis (1 process vs the chain's process + 1
solo worker taking the `embed_chunk` group that `embed_missing` sends), cache lookups of Banking77's
10,003 training texts in PostgreSQL against encoding them, and the prediction table after 10
retrain cycles (train -> promote -> score -> prune) at 100,000 cases.

    .venv/bin/python bench/pipeline.py [--quick] [--sizes 10000 100000 1000000] [--keep-db]

Writes bench/results/pipeline.json and pipeline.png.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_PG_DB", "bench_pipeline")
DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", "/tmp/bench_pipeline_data"))
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/5")
os.environ["DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
os.environ["WORKBENCH_DATA_DIR"] = str(DATA_DIR)
os.environ["CELERY_BROKER_URL"] = BROKER
os.environ["WORKER_THREADS"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

from bench.common import (  # noqa: E402
    cached_embeddings,
    load_banking77,
    new_figure,
    save_figure,
    scratch_database_create,
    scratch_database_drop,
    write_result,
)

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
BASE_RECORDS = 2_000
NOISE = 0.02  # per-dimension sd of the noise added to a base vector (norm ~0.4 before rescaling)
ANALYST_POOL, ANALYST_EVAL = 300, 300
OPEN_ITEMS = 200  # open pool items left by the previous refresh
RETRAINS = 10
RETRAIN_SIZE = 100_000
EMBED_TEXTS = 4_000
STEPS = (
    "matrix_sync",
    "embedding_view_only",
    "find_label_issues",
    "review_items",
    "train_model",
    "score_pool",
    "predictions_prune",
    "refresh_queue",
)
TARGET_STEPS = ("score_pool", "predictions_prune", "refresh_queue")
TARGET_SECONDS = 60.0


# --- database --------------------------------------------------------------------------------


def create_database() -> None:
    scratch_database_create(SERVER, DB_NAME)


def drop_database() -> None:
    scratch_database_drop(SERVER, DB_NAME)


def _vacuum(table: str | None = None) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/{DB_NAME}", autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {table or ''}")


# --- measuring -------------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Measure:
    """Wall time and peak RSS (sampled every 5 ms) of a block."""

    def __enter__(self) -> Measure:
        self.start_mb = self.peak_mb = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_mb = max(self.peak_mb, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, _rss_mb())

    def as_dict(self) -> dict[str, float]:
        return {
            "seconds": round(self.seconds, 3),
            "peak_rss_mb": round(self.peak_mb, 1),
            "extra_mb": round(self.peak_mb - self.start_mb, 1),
        }


# --- data ------------------------------------------------------------------------------------


def base_data() -> tuple[list[Any], np.ndarray]:
    """BASE_RECORDS generated merchants and their real MiniLM vectors (cached in bench/results)."""
    from active_learning.services.embeddings import encoder_get, model_name_current
    from labeling.synthetic import generate

    records = generate(BASE_RECORDS, seed=11, noise=0.2)
    vectors = cached_embeddings(
        [r.text for r in records], model_name_current(), lambda t: encoder_get().encode(list(t))
    )
    return records, vectors


def _truncate() -> None:
    from django.db import connection

    tables = [
        "labeling_project",
        "active_learning_embedding",
        "active_learning_job",
        "active_learning_lease",
        "auth_user",
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    DATA_DIR.mkdir(parents=True)


def load(n: int, records: list[Any], base: np.ndarray, seed: int = 0) -> Any:
    """COPY-load a project of `n` cases with embeddings and a few hundred analysts' labels."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from active_learning.ml.hashing import content_hash
    from active_learning.models import Embedding
    from active_learning.services.bulk import COPY_HEADER, COPY_TRAILER, pg_timestamp
    from active_learning.services.embeddings import model_name_current
    from labeling.models import Case, LabelClass, QueueItem, QueueStatus, ResolvedLabel
    from labeling.services.projects import project_create
    from labeling.services.queue import QueueEntry, queue_items_create
    from labeling.splits import split_function
    from labeling.synthetic.taxonomy import label_class_specs

    _truncate()
    fields = ("name", "display_name", "tier", "description", "guideline", "shortcut_key")
    classes = [{k: spec[k] for k in fields} for spec in label_class_specs()]  # type: ignore[literal-required]
    project = project_create(slug=f"bench-{n}", classes=classes, settings={"batch_size": 50})
    by_name = {c.name: c.pk for c in LabelClass.objects.filter(project=project)}
    split = split_function(
        split_seed=project.split_seed, evaluation_fraction=project.evaluation_fraction
    )
    rng = np.random.default_rng(seed)
    now = timezone.now()
    now_text = now.isoformat()
    model = model_name_current()
    raw = connection.cursor().cursor
    splits = np.empty(n, dtype=bool)  # True: eval
    dim = base.shape[1]
    # Embedding rows are fixed-width: COPY BINARY tuples packed by numpy.
    emb_dtype = np.dtype(
        [
            ("count", ">i2"),
            ("model_len", ">i4"), ("model", f"S{len(model)}"),
            ("hash_len", ">i4"), ("hash", "S64"),
            ("dim_len", ">i4"), ("dim", ">i2"),
            ("vector_len", ">i4"), ("vector", "<f4", (dim,)),
            ("created_len", ">i4"), ("created", ">i8"),
        ]
    )  # fmt: skip
    created = pg_timestamp(now)
    given_ids = [by_name[r.given_label] for r in records]
    chunk = 50_000
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        idx = np.arange(start, stop)
        base_idx = idx % len(records)
        vectors = base[base_idx] + rng.normal(scale=NOISE, size=(stop - start, dim))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        lines, hashes = [], []
        for i, b in zip(idx.tolist(), base_idx.tolist(), strict=True):
            text = f"{records[b].text} (store {i})"
            digest = content_hash(text)
            external_id = f"M{i:08d}"
            sp = split(external_id)
            splits[i] = sp == "eval"
            hashes.append(digest)
            lines.append(
                f"{i + 1}\t{project.pk}\t{external_id}\t{_escape(text)}\t{{}}\t"
                f"{given_ids[b]}\t{sp}\t{digest}\t{now_text}\t{now_text}\n"
            )
        with raw.copy(
            f"COPY {Case._meta.db_table} (id, project_id, external_id, text, metadata,"
            " given_label_id, split, content_hash, imported_at, updated_at) FROM STDIN"
        ) as copy:
            copy.write("".join(lines))
        rows = np.empty(stop - start, dtype=emb_dtype)
        rows["count"] = 5
        rows["model_len"], rows["model"] = len(model), model.encode()
        rows["hash_len"], rows["hash"] = 64, [h.encode() for h in hashes]
        rows["dim_len"], rows["dim"] = 2, dim
        rows["vector_len"], rows["vector"] = 4 * dim, vectors
        rows["created_len"], rows["created"] = 8, created
        with raw.copy(
            f"COPY {Embedding._meta.db_table} (model_name, content_hash, dim, vector, created_at)"
            " FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(COPY_HEADER + rows.tobytes() + COPY_TRAILER)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{Case._meta.db_table}', 'id'), {n})")
    # Analysts' labels: the true label of a few hundred pool and evaluation cases.
    pool_ids = np.flatnonzero(~splits)
    eval_ids = np.flatnonzero(splits)
    picked = np.concatenate(
        [
            rng.choice(pool_ids, ANALYST_POOL, replace=False),
            rng.choice(eval_ids, min(ANALYST_EVAL, eval_ids.size), replace=False),
        ]
    )
    ResolvedLabel.objects.bulk_create(
        ResolvedLabel(
            case_id=int(i) + 1,
            label_id=by_name[records[int(i) % len(records)].true_label],
            source="annotation",
            agreement=1.0,
        )
        for i in picked
    )
    labelled = [QueueEntry(int(i) + 1, 0.0, {"strategy": "random"}) for i in picked]
    # One done item per labelled case: the fill may queue a case for a second analyst.
    first: dict[int, int] = {}
    for item in queue_items_create(project=project, entries=labelled):
        first.setdefault(item.case_id, item.pk)
    QueueItem.objects.filter(project=project).exclude(pk__in=first.values()).delete()
    analyst = get_user_model().objects.create(username="analyst", password="!")
    QueueItem.objects.filter(pk__in=first.values()).update(
        status=QueueStatus.DONE, assigned_to=analyst, claimed_at=now, completed_at=now
    )
    rest = np.setdiff1d(pool_ids, picked)
    open_ids = rng.choice(rest, OPEN_ITEMS, replace=False)
    queue_items_create(
        project=project,
        entries=[QueueEntry(int(i) + 1, 1.0, {"strategy": "random"}) for i in open_ids],
    )
    _vacuum()
    return project


def _escape(text: str) -> str:
    """A value for COPY's text format."""
    for char, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        text = text.replace(char, escaped)
    return text


def _new_project(slug: str) -> Any:
    from labeling.services.projects import project_create
    from labeling.synthetic.taxonomy import label_class_specs

    fields = ("name", "display_name", "tier", "description", "guideline", "shortcut_key")
    classes = [{k: spec[k] for k in fields} for spec in label_class_specs()]  # type: ignore[literal-required]
    return project_create(slug=slug, classes=classes, settings={"batch_size": 50})


# --- the steps -------------------------------------------------------------------------------


def _copy_version(version: Any) -> Any:
    """Another champion-ready version with the same model file (a retrain without the fit)."""
    from django.db.models import Max

    from active_learning.models import ModelStatus, ModelVersion

    number = ModelVersion.objects.filter(project=version.project).aggregate(m=Max("number"))["m"]
    return ModelVersion.objects.create(
        project=version.project,
        number=number + 1,
        status=ModelStatus.READY,
        artifact_path=version.artifact_path,
        embedding_model=version.embedding_model,
        metrics=version.metrics,
    )


def _prediction_table() -> dict[str, int]:
    from django.db import connection

    from active_learning.models import Prediction

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [Prediction._meta.db_table])
        size = int(cursor.fetchone()[0])
    return {"rows": Prediction.objects.count(), "bytes": size}


@contextlib.contextmanager
def _embedding_view_only(issues: Any) -> Iterator[None]:
    """`issues.find_label_issues` with the auxiliary views checking no case (each then repeats
    the embedding view's probabilities): today's detector before the views, for its cost."""
    real = issues.auxiliary_views

    def nothing_checked(X: Any, texts_of: Any, labels: Any, **kw: Any) -> Any:
        proba = kw["embedding_proba"]
        return proba, proba, np.ones(len(labels), dtype=bool)

    issues.auxiliary_views = nothing_checked
    try:
        yield
    finally:
        issues.auxiliary_views = real


def _detection(issues: Any, project: Any) -> dict[str, Any]:
    """Both detection steps, the baseline first; the full step's cost ratio to it."""
    from active_learning.ml.noise.views import AUX_MAX_ROWS

    steps: dict[str, Any] = {}
    with _embedding_view_only(issues), Measure() as m:
        found = issues.find_label_issues(project=project)
    steps["embedding_view_only"] = {**m.as_dict(), **found}
    with Measure() as m:
        found = issues.find_label_issues(project=project)
    steps["find_label_issues"] = {
        **m.as_dict(),
        **found,
        "fold_fit_rows_capped_at": (
            issues.FIT_MAX_ROWS if found.get("checked", 0) > issues.FIT_MAX_ROWS else None
        ),
        "aux_rows_capped_at": (AUX_MAX_ROWS if found.get("checked", 0) > AUX_MAX_ROWS else None),
        "cost_ratio": round(m.seconds / steps["embedding_view_only"]["seconds"], 3),
    }
    return steps


def run_size(
    n: int, records: list[Any], base: np.ndarray, *, detection_only: bool = False
) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from active_learning.models import Prediction
    from active_learning.services import (
        embeddings,
        issues,
        promotion,
        queue_refresh,
        review_items,
        scoring,
    )
    from active_learning.services.training import train_model

    out: dict[str, Any] = {"cases": n}
    with Measure() as m:
        project = load(n, records, base)
    out["load"] = m.as_dict()
    print(f"  load {m.seconds:.1f} s", flush=True)
    steps: dict[str, Any] = {}
    with threadpool_limits(1):
        shutil.rmtree(embeddings.matrix_dir(embeddings.model_name_current()), ignore_errors=True)
        with Measure() as m:
            manifest = embeddings.matrix_sync()
        steps["matrix_sync"] = {**m.as_dict(), "rows": manifest["rows"]}

        steps.update(_detection(issues, project))
        if detection_only:
            for name in ("embedding_view_only", "find_label_issues"):
                _print_step(name, steps[name])
            return {**out, "steps": steps}

        with Measure() as m:
            made = review_items.review_items_refresh(project=project)
        steps["review_items"] = {**m.as_dict(), **made}

        with Measure() as m:
            version = train_model(project=project)
            assert version is not None
            decision = promotion.promotion_decide(challenger=version)
        steps["train_model"] = {
            **m.as_dict(),
            "n_train": version.n_train,
            "fit_s": version.timings.get("fit_s"),
            "promoted": decision.promote,
            "n_labelled": version.params.get("n_labelled"),
            "sampled": version.params.get("sampled"),
        }
        # Two earlier champions' rows already stored: v1 (just trained) and a copy of it.
        first = scoring.score_pool(project=project, version=version)
        del first
        second = _copy_version(version)
        promotion.model_version_promote(version=second, actor=None, reason="bench")
        scoring.score_pool(project=project, version=second)
        third = _copy_version(version)
        promotion.model_version_promote(version=third, actor=None, reason="bench")
        with Measure() as m:
            scores = scoring.score_pool(project=project, version=third)
        steps["score_pool"] = {**m.as_dict(), "rows_written": int(scores.case_ids.size)}
        before = Prediction.objects.count()
        with Measure() as m:
            deleted = scoring.predictions_prune(project=project)
        steps["predictions_prune"] = {**m.as_dict(), "deleted": deleted, "rows_before": before}
        with Measure() as m:
            refreshed = queue_refresh.refresh_queue(project=project, scores=scores)
        steps["refresh_queue"] = {**m.as_dict(), **refreshed}
    out["steps"] = steps
    out["target_seconds"] = round(sum(steps[s]["seconds"] for s in TARGET_STEPS), 3)
    out["prediction_table"] = _prediction_table()
    for name in STEPS:
        _print_step(name, steps[name])
    print(f"  score+prune+refresh {out['target_seconds']:.1f} s", flush=True)
    return out


def _print_step(name: str, s: dict[str, Any]) -> None:
    print(
        f"  {name:19s} {s['seconds']:8.2f} s   peak {s['peak_rss_mb']:7.0f} MB"
        f" (+{s['extra_mb']:.0f})",
        flush=True,
    )


def run_retrains(n: int, records: list[Any], base: np.ndarray) -> dict[str, Any]:
    """RETRAINS cycles of train -> promote -> score -> prune; the prediction table after each."""
    from threadpoolctl import threadpool_limits

    from active_learning.services import promotion, scoring
    from active_learning.services.training import train_model
    from labeling.models import Project

    project = load(n, records, base, seed=1)
    # Analysts' labels only (given_label_weight 0): the fit is not what this measures.
    Project.objects.filter(pk=project.pk).update(given_label_weight=0.0)
    project.refresh_from_db()
    cycles = []
    with threadpool_limits(1):
        for r in range(RETRAINS):
            t0 = time.perf_counter()
            version = train_model(project=project)
            assert version is not None
            # Worst case: every challenger becomes champion (forced, as an admin could).
            promotion.model_version_promote(version=version, actor=None, reason="bench")
            scoring.score_pool(project=project, version=version)
            deleted = scoring.predictions_prune(project=project)
            table = _prediction_table()
            cycles.append(
                {"cycle": r + 1, "seconds": round(time.perf_counter() - t0, 2),
                 "deleted": deleted, **table}
            )  # fmt: skip
            print(
                f"  retrain {r + 1}: {table['rows']} rows, {table['bytes'] / 2**20:.1f} MB",
                flush=True,
            )
    _vacuum("active_learning_prediction")
    after_vacuum = _prediction_table()
    return {
        "cases": n,
        "cycles": cycles,
        "after_vacuum": after_vacuum,
        "rows_per_case": round(cycles[-1]["rows"] / n, 3),
    }


# --- embedding: workers and the cache --------------------------------------------------------


def _start_workers(count: int) -> list[subprocess.Popen]:
    env = {**os.environ, "WORKER_THREADS": "1", "OMP_NUM_THREADS": "1"}
    procs = []
    for i in range(count):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "workbench", "worker", "--pool=solo",
                    "-n", f"bench-pipeline-{i}@%h", "--loglevel=WARNING", "--without-gossip",
                    "--without-mingle", "--without-heartbeat",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    return procs


def _stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _embed_project(tag: str, n: int) -> tuple[Any, list[str]]:
    from active_learning.ml.hashing import content_hash
    from labeling.models import Case
    from labeling.synthetic import generate

    project = _new_project(f"embed-{tag}")
    records = generate(n, seed=len(tag) * 100 + n, noise=0.0)
    cases = [
        Case(
            project=project,
            external_id=f"{tag}-{i}",
            text=f"{r.text} ({tag} {i})",
            content_hash=content_hash(f"{r.text} ({tag} {i})"),
        )
        for i, r in enumerate(records)
    ]
    Case.objects.bulk_create(cases, batch_size=2000)
    return project, [c.content_hash for c in cases]


def run_workers() -> dict[str, Any]:
    """The embed step with 1 process, then the chain's process + 1 solo Celery worker."""
    from django.conf import settings
    from threadpoolctl import threadpool_limits

    from active_learning.models import Embedding
    from active_learning.services import embeddings
    from workbench.celery import app

    _truncate()
    app.control.purge()
    encoder = embeddings.encoder_get()
    out: dict[str, Any] = {"texts": EMBED_TEXTS, "chunk": settings.EMBED_CHUNK_TEXTS}
    with threadpool_limits(1):
        encoder.encode(["warm up"])
        for extra in (0, 1):
            label = f"{extra + 1} process" + ("es" if extra else "")
            procs = _start_workers(extra)
            try:
                if extra:  # warm each worker up: the model loads on its first chunk
                    warm, hashes = _embed_project(f"warm{extra}", extra)
                    from active_learning.tasks import embed_chunk

                    for h in hashes:
                        embed_chunk.delay(warm.pk, [h])
                    deadline = time.monotonic() + 180
                    while Embedding.objects.filter(content_hash__in=hashes).count() < len(hashes):
                        if time.monotonic() > deadline:
                            raise RuntimeError("the Celery workers did not start")
                        time.sleep(0.2)
                project, hashes = _embed_project(f"run{extra}", EMBED_TEXTS)
                settings.PIPELINE_FANOUT = bool(extra)
                t0 = time.perf_counter()
                embeddings.embed_missing(project=project, hashes=hashes)
                seconds = time.perf_counter() - t0
                stored = Embedding.objects.filter(content_hash__in=hashes).count()
            finally:
                _stop_workers(procs)
                settings.PIPELINE_FANOUT = True
            out[label] = {
                "seconds": round(seconds, 2),
                "texts_per_s": round(EMBED_TEXTS / seconds, 1),
                "stored": stored,
            }
            print(f"  embed {EMBED_TEXTS} texts, {label}: {seconds:.1f} s", flush=True)
    one, two = out["1 process"]["seconds"], out["2 processes"]["seconds"]
    out["speedup"] = round(one / two, 2)
    return out


def run_cache() -> dict[str, Any]:
    """Banking77's training texts: encoding them vs looking their vectors up in PostgreSQL."""
    from threadpoolctl import threadpool_limits

    from active_learning.ml.hashing import content_hash
    from active_learning.services.embeddings import (
        DatabaseEmbeddingCache,
        encoder_get,
        model_name_current,
    )

    _truncate()
    texts, _ = load_banking77("train")
    encoder, cache, model = encoder_get(), DatabaseEmbeddingCache(), model_name_current()
    out: dict[str, Any] = {"texts": len(texts)}
    with threadpool_limits(1):
        with Measure() as m:
            vectors = encoder.encode(texts)
        out["encode"] = m.as_dict()
        hashes = [content_hash(t) for t in texts]
        unique = dict(zip(hashes, vectors, strict=True))
        with Measure() as m:
            cache.put_many(model, unique)
        out["store"] = m.as_dict()
        with Measure() as m:
            found = cache.get_many(model, list(unique))
        out["lookup"] = {**m.as_dict(), "found": len(found)}
        with Measure() as m:
            again = encoder.encode(texts, cache=cache)
        out["encode_all_cached"] = m.as_dict()
        assert np.allclose(again, vectors, atol=1e-5)
    out["speedup"] = round(out["encode"]["seconds"] / out["encode_all_cached"]["seconds"], 1)
    print(
        f"  Banking77 {len(texts)} texts: encode {out['encode']['seconds']:.1f} s, "
        f"lookup {out['lookup']['seconds']:.2f} s, encode via cache "
        f"{out['encode_all_cached']['seconds']:.2f} s",
        flush=True,
    )
    return out


# --- output ----------------------------------------------------------------------------------


def plot(sizes: list[dict[str, Any]]) -> None:
    fig, ax = new_figure(figsize=(7.5, 5))
    ns = [s["cases"] for s in sizes]
    for name in STEPS:
        ax.plot(ns, [s["steps"][name]["seconds"] for s in sizes], marker="o", label=name)
    ax.plot(
        ns, [s["target_seconds"] for s in sizes], "k--", marker="s",
        label="score + prune + refresh",
    )  # fmt: skip
    ax.axhline(TARGET_SECONDS, color="red", lw=0.8, ls=":", label="60 s target")
    lo = sizes[0]["target_seconds"]
    ax.plot(ns, [lo * n / ns[0] for n in ns], color="grey", lw=0.6, label="linear")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cases in the pool")
    ax.set_ylabel("wall time (s)")
    ax.set_title("Pipeline steps on PostgreSQL (1 thread)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    save_figure(fig, "pipeline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 cases only")
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--skip-cache", action="store_true")
    parser.add_argument("--skip-retrains", action="store_true")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the scratch database")
    parser.add_argument(
        "--detection-only",
        action="store_true",
        help="only load, matrix and the two detection steps; writes pipeline_detection.json",
    )
    args = parser.parse_args()
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)

    started = time.perf_counter()
    create_database()
    import django

    django.setup()
    results: dict[str, Any] = {"sizes": [], "vectors": "synthetic (base MiniLM vector + noise)"}
    try:
        records, base = base_data()
        for n in sizes:
            print(f"{n} cases", flush=True)
            results["sizes"].append(run_size(n, records, base, detection_only=args.detection_only))
        if not args.skip_retrains and not args.detection_only:
            print(f"{RETRAINS} retrains at {RETRAIN_SIZE} cases", flush=True)
            results["retrains"] = run_retrains(RETRAIN_SIZE, records, base)
        if not args.skip_workers and not args.detection_only:
            print("embedding with Celery workers", flush=True)
            results["workers"] = run_workers()
        if not args.skip_cache and not args.detection_only:
            print("embedding cache", flush=True)
            results["cache"] = run_cache()
    finally:
        if not args.keep_db:
            drop_database()
        shutil.rmtree(DATA_DIR, ignore_errors=True)
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    print(f"total {results['total_seconds']:.0f} s")
    if args.detection_only:
        write_result("pipeline_detection", results)
        return
    write_result("pipeline", results)
    plot(results["sizes"])


if __name__ == "__main__":
    main()
