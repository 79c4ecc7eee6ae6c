"""Topping up a low queue from the champion's stored scores at 1,000,000 cases on PostgreSQL.

A scratch database (default `bench_refill` on postgres://postgres@127.0.0.1:5432/, created,
migrated and dropped here) gets N cases (COPY), a champion whose predictions are written by the
real writer (`scoring.predictions_write`, COPY; probabilities are a softmax of Gaussian logits
over the taxonomy's 20 classes, no model), and a long session's history: the LABELLED most
uncertain pool cases labelled through the queue (what earlier picks took, so the index walk must
step over them), OPEN open items, a retrain waiting for a worker, and analysts' answers of the
last ten minutes with a 300 s last retrain (the buffer's inputs). Then, timed:

  query            `stored_candidates` alone, per measure (margin, least confidence, entropy)
  top_up           `queue_top_up` end to end, as a claim's after-commit runs it: buffer sizing,
                   the query, reasons and facts, `queue_items_create` (repeated, the queue
                   emptied between runs), past the warm-up
  top_up_warmup    the same while evaluation evidence is short: a fifth of it is the pool
                   probe's, the free pool cases with the lowest probe keys
  write            `predictions_write` of every case: first, then replacing the version's rows
                   with and without the two partial indexes of migration 0008
  without_indexes  the margin query with those indexes dropped

    .venv/bin/python bench/queue_refill.py [--cases 1000000] [--keep-db]

Writes bench/results/queue_refill.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_PG_DB", "bench_refill")
os.environ["DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

from bench.common import scratch_database_create, scratch_database_drop, write_result  # noqa: E402

LABELLED = 3_000
OPEN = 200
ANSWERS = 300  # over the last 10 minutes: 0.5 a second
RETRAIN_SECONDS = 300
REPEATS = 5
INDEXES = ("prediction_version_uncertainty", "prediction_version_confidence")


def _setup() -> None:
    import django

    django.setup()


def load(n: int, seed: int = 0) -> tuple[Any, Any, Any]:
    """COPY `n` cases into a new project; returns (project, champion, Scores)."""
    from django.db import connection

    from active_learning.ml.hashing import content_hash
    from active_learning.models import ModelStatus, ModelVersion
    from active_learning.services.scoring import Scores
    from labeling.models import Case, LabelClass
    from labeling.services.projects import project_create
    from labeling.splits import split_function
    from labeling.synthetic.taxonomy import label_class_specs

    fields = ("name", "display_name", "tier", "description", "guideline", "shortcut_key")
    classes = [{k: spec[k] for k in fields} for spec in label_class_specs()]  # type: ignore[literal-required]
    project = project_create(slug=f"refill-{n}", classes=classes, settings={"batch_size": 50})
    class_ids = list(
        LabelClass.objects.filter(project=project).order_by("pk").values_list("pk", flat=True)
    )
    split = split_function(
        split_seed=project.split_seed, evaluation_fraction=project.evaluation_fraction
    )
    is_eval = np.empty(n, dtype=bool)
    raw = connection.cursor().cursor
    for start in range(0, n, 100_000):
        lines = []
        for i in range(start, min(n, start + 100_000)):
            text = f"Merchant {i} sells goods"
            external_id = f"M{i:08d}"
            sp = split(external_id)
            is_eval[i] = sp == "eval"
            lines.append(
                f"{i + 1}\t{project.pk}\t{external_id}\t{text}\t{{}}\t{sp}\t"
                f"{content_hash(text)}\tnow()\tnow()\n"
            )
        with raw.copy(
            f"COPY {Case._meta.db_table} (id, project_id, external_id, text, metadata, split,"
            " content_hash, imported_at, updated_at) FROM STDIN"
        ) as copy:
            copy.write("".join(lines))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{Case._meta.db_table}', 'id'), {n})")
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, len(class_ids))).astype(np.float32)
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    version = ModelVersion.objects.create(project=project, number=1, status=ModelStatus.CHAMPION)
    scores = Scores(version, np.arange(1, n + 1), is_eval, np.arange(n), proba, class_ids)
    return project, version, scores


def write(project: Any, scores: Any) -> float:
    from active_learning.services.scoring import full_rows_mask, predictions_write

    started = time.perf_counter()
    predictions_write(
        scores=scores, full_case_ids=set(), full_mask=full_rows_mask(project=project, scores=scores)
    )
    return time.perf_counter() - started


def history(project: Any, scores: Any) -> None:
    """Earlier picks labelled, open items, a waiting retrain, the analysts' recent answers."""
    import uuid
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from active_learning.ml.strategies.uncertainty import margin_uncertainty
    from labeling.models import Annotation, QueueItem, QueueStatus, ResolvedLabel
    from labeling.services.queue import QueueEntry, queue_items_create
    from workbench.core.models import Job, JobKind, JobStatus

    pool = np.flatnonzero(~scores.is_eval)
    order = pool[np.argsort(-margin_uncertainty(scores.proba[pool]), kind="stable")]
    labelled = [int(scores.case_ids[i]) for i in order[:LABELLED]]
    opened = [int(scores.case_ids[i]) for i in order[LABELLED : LABELLED + OPEN]]
    queue_items_create(
        project=project, entries=[QueueEntry(c, 0.0, {"strategy": "margin"}) for c in labelled]
    )
    analyst = get_user_model().objects.create(username="analyst", password="!")
    now = timezone.now()
    QueueItem.objects.filter(project=project).update(
        status=QueueStatus.DONE, assigned_to=analyst, claimed_at=now, completed_at=now
    )
    label = scores.class_ids[0]
    ResolvedLabel.objects.bulk_create(
        ResolvedLabel(case_id=c, label_id=label, source="annotation") for c in labelled
    )
    answers = Annotation.objects.bulk_create(
        Annotation(
            case_id=c,
            annotator=analyst,
            label_id=label,
            submission_id=uuid.uuid4(),
            content_hash="x",
        )
        for c in labelled[:ANSWERS]
    )
    for k, answer in enumerate(answers):
        answer.created_at = now - timedelta(seconds=600 * k / ANSWERS)
    Annotation.objects.bulk_update(answers, ["created_at"])
    queue_items_create(
        project=project, entries=[QueueEntry(c, 1.0, {"strategy": "margin"}) for c in opened]
    )
    Job.objects.create(
        kind=JobKind.RETRAIN,
        project=project,
        status=JobStatus.SUCCEEDED,
        finished_at=now - timedelta(seconds=3600 - RETRAIN_SECONDS),
    )
    Job.objects.filter(kind=JobKind.RETRAIN).update(created_at=now - timedelta(seconds=3600))
    Job.objects.create(kind=JobKind.RETRAIN, project=project, status=JobStatus.QUEUED)


def _vacuum() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def _plan(version_id: int, measure: str, limit: int) -> list[str]:
    """EXPLAIN ANALYZE of the candidates query: the plan's lines."""
    from django.db import connection

    sql_text, params = _candidates_sql(version_id, measure, limit)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql_text}", params)
        return [r[0] for r in cursor.fetchall()]


def _candidates_sql(version_id: int, measure: str, limit: int) -> tuple[str, Any]:
    """The SQL `stored_candidates` runs, as sent (captured, not rebuilt)."""
    from django.db import connection

    from active_learning.services import queue_refill

    captured: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        queue_refill.stored_candidates(version_id=version_id, measure=measure, limit=limit)
    return captured[-1]


def time_query(version_id: int, measure: str, limit: int) -> dict[str, Any]:
    from active_learning.services.queue_refill import stored_candidates

    runs = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        rows = stored_candidates(version_id=version_id, measure=measure, limit=limit)
        runs.append(time.perf_counter() - started)
    return {"limit": limit, "rows": len(rows), "median_ms": 1000 * statistics.median(runs)}


def time_top_up(project: Any) -> dict[str, Any]:
    from active_learning.services.queue_probe import PROBE
    from labeling.models import QueueItem, QueueKind, QueueStatus
    from labeling.services.queue.refill import queue_buffer, queue_top_up

    runs, created = [], []
    for _ in range(REPEATS):
        # The queue ran low: open pool items go (as claims would take them).
        QueueItem.objects.filter(
            project=project, status=QueueStatus.OPEN, kind=QueueKind.POOL
        ).update(status=QueueStatus.CANCELLED)
        started = time.perf_counter()
        created.append(queue_top_up(project_id=project.pk))
        runs.append(time.perf_counter() - started)
    strategies = set(
        QueueItem.objects.filter(project=project, status=QueueStatus.OPEN).values_list(
            "reason__strategy", flat=True
        )
    )
    probes = QueueItem.objects.filter(
        project=project, status=QueueStatus.OPEN, reason__details__has_key=PROBE
    ).count()
    return {
        "buffer": queue_buffer(project=project),
        "created": created,
        "probe_items": probes,
        "median_ms": 1000 * statistics.median(runs),
        "max_ms": 1000 * max(runs),
        "strategies": sorted(strategies),
    }


def drop_indexes() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    scratch_database_create(SERVER, DB_NAME)
    _setup()
    try:
        result = run(args.cases)
    finally:
        if not args.keep_db:
            scratch_database_drop(SERVER, DB_NAME)
    path = write_result("queue_refill", result)
    print(f"wrote {path}")
    return 0


def run(n: int) -> dict[str, Any]:
    from active_learning.models import Prediction
    from labeling.services.queue.refill import queue_buffer

    started = time.perf_counter()
    project, version, scores = load(n)
    print(f"loaded {n} cases in {time.perf_counter() - started:.1f} s", flush=True)
    write_seconds = write(project, scores)
    print(f"predictions written (with the indexes) in {write_seconds:.1f} s", flush=True)
    history(project, scores)
    _vacuum()
    top_k_rows = Prediction.objects.filter(top_k__isnull=False).count()
    limit = queue_buffer(project=project)
    queries = {
        measure: time_query(version.pk, measure, limit * (10 if measure == "entropy" else 1))
        for measure in ("margin", "least_confidence", "entropy")
    }
    plan = _plan(version.pk, "margin", limit)
    # Past the warm-up (the steady state), then during it: the pool probe's share of a top-up
    # reads the ids of every free pool case to find the lowest probe keys.
    project.evaluation_evidence_short = False
    project.save(update_fields=["evaluation_evidence_short"])
    top_up = time_top_up(project)
    project.evaluation_evidence_short = True
    project.save(update_fields=["evaluation_evidence_short"])
    top_up_warmup = time_top_up(project)
    print(f"queries {queries}\ntop-up {top_up}\nduring warm-up {top_up_warmup}", flush=True)
    # The writer's cost of the two partial indexes: a retrain replaces a version's rows.
    replace_indexed = write(project, scores)
    drop_indexes()
    _vacuum()
    unindexed = time_query(version.pk, "margin", limit)
    unindexed_plan = _plan(version.pk, "margin", limit)
    replace_unindexed = write(project, scores)
    print(
        f"without indexes: query {unindexed}; replacing the rows {replace_unindexed:.1f} s"
        f" (with them {replace_indexed:.1f} s)",
        flush=True,
    )
    return {
        "cases": n,
        "labelled": LABELLED,
        "open_items": OPEN,
        "pace_per_second": ANSWERS / 600,
        "retrain_seconds": RETRAIN_SECONDS,
        "buffer": limit,
        "query": queries,
        "plan": plan,
        "top_up": top_up,
        "top_up_warmup": top_up_warmup,
        "write_seconds": {
            "first": write_seconds,
            "replace_with_indexes": replace_indexed,
            "replace_without_indexes": replace_unindexed,
        },
        "rows_with_top_k": top_k_rows,
        "without_indexes": {"query": unindexed, "plan": unindexed_plan},
    }


if __name__ == "__main__":
    sys.exit(main())
