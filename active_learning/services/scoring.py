"""Scoring the pool with the champion and storing bounded predictions (DESIGN "Prediction volume").

Every case gets a compact row (predicted label, confidence, uncertainty) for the version that
scored it; evaluation cases, a fixed random stop set, the queue's candidates and a reserve of the
most uncertain pool cases (what a top-up from stored scores picks next) also get their top-k
probabilities. Rows are written with COPY on PostgreSQL. When a new champion takes over,
only the current and previous champion keep rows for every case; older versions keep the
evaluation cases and the stop set.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from active_learning.ml.strategies.uncertainty import margin_uncertainty
from active_learning.models import ModelStatus, ModelVersion, Prediction
from active_learning.selectors import analyst_labels
from active_learning.services.bulk import copy_binary_rows, pg_timestamp
from active_learning.services.embeddings import matrix_load
from active_learning.services.training import load_version
from labeling.models import Case, Project, Split
from labeling.services.queue.refill import BUFFER_CAP_FACTOR
from workbench.core.hashing import unit_hash, unit_hashes

CHUNK = 100_000
TOP_K = 5
STOP_SET_FRACTION = 0.01
RESERVE_FACTOR = 4  # top-k for 4x the largest buffer by each stored measure's order


@dataclass
class Scores:
    """The champion's view of every case, in case-id order. `proba` columns follow `class_ids`."""

    version: ModelVersion
    case_ids: np.ndarray
    is_eval: np.ndarray
    rows: np.ndarray  # matrix rows of each case
    proba: np.ndarray
    class_ids: list[int]

    def uncertainty(self) -> np.ndarray:
        """1 - (p1 - p2): the margin's complement; 1 means torn between two classes."""
        return margin_uncertainty(self.proba)


def in_stop_set(*, project: Project, case_id: int) -> bool:
    return unit_hash(project.split_seed, "stop-set", case_id) < STOP_SET_FRACTION


def stop_set_mask(*, project: Project, case_ids: np.ndarray) -> np.ndarray:
    """`in_stop_set` for many cases at once (same hash, ~1 µs a case instead of ~4)."""
    ids = np.asarray(case_ids, dtype=np.int64).tolist()
    return unit_hashes(project.split_seed, "stop-set", values=ids) < STOP_SET_FRACTION


def _cases_of(project: Project) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(ids, content hashes, is-eval mask) of the project's cases in id order, in one query."""
    query = (
        Case.objects.filter(project=project)
        .order_by("id")
        .values_list("id", "content_hash", "split")
        .query
    )
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cases = cursor.fetchall()
    ids = np.fromiter((c[0] for c in cases), dtype=np.int64, count=len(cases))
    is_eval = np.fromiter((c[2] == Split.EVAL for c in cases), dtype=bool, count=len(cases))
    return ids, [c[1] for c in cases], is_eval


def score_pool(
    *,
    project: Project,
    version: ModelVersion,
    full_case_ids: set[int] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Scores:
    """Score every embedded case of the project with `version` and store its predictions.

    Cases without a vector yet (imported or edited while the retrain ran) are left for the next
    retrain, which embeds them first: this one neither waits for them nor fails."""
    case_ids, hashes, is_eval = _cases_of(project)
    # The version's own vectors: after a backend change the champion keeps scoring with the
    # vectors it was trained on until a model of the new backend replaces it.
    matrix = matrix_load(model_name=version.embedding_model or None)
    rows = matrix.rows_for(hashes)
    del hashes
    known = rows >= 0
    if not bool(known.all()):
        case_ids, rows, is_eval = case_ids[known], rows[known], is_eval[known]
    n = int(rows.shape[0])
    model = load_version(version)
    class_ids = [int(c) for c in model.classes_]
    proba = np.empty((n, len(class_ids)), dtype=np.float32)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        proba[start:stop] = model.predict_proba(np.asarray(matrix.vectors[rows[start:stop]]))
        if progress:
            progress(0.6 * stop / max(1, n), f"scored {stop} of {n} cases")
    scores = Scores(version, case_ids, is_eval, rows, proba, class_ids)
    full = full_rows_mask(project=project, scores=scores)
    if full_case_ids:
        full |= np.isin(case_ids, np.fromiter(full_case_ids, dtype=np.int64))
    predictions_write(scores=scores, full_case_ids=set(), full_mask=full)
    if progress:
        progress(1.0, f"stored predictions for {n} cases")
    return scores


def full_rows_mask(*, project: Project, scores: Scores) -> np.ndarray:
    """Rows stored with their top-k: evaluation cases, the stop set and the reserve."""
    full = scores.is_eval | stop_set_mask(project=project, case_ids=scores.case_ids)
    reserve = RESERVE_FACTOR * BUFFER_CAP_FACTOR * project.batch_size
    return full | reserve_mask(scores=scores, size=reserve)


def reserve_mask(*, scores: Scores, size: int) -> np.ndarray:
    """The `size` pool rows with the highest margin uncertainty and the `size` with the lowest
    confidence: a top-up from stored scores (`queue_refill`) picks among rows with top-k (its
    cards show their classes), and finds them on a partial index, not by scanning every row."""
    mask = np.zeros(scores.case_ids.shape[0], dtype=bool)
    pool = np.flatnonzero(~scores.is_eval)
    if pool.size == 0 or size <= 0:
        return mask
    for priority in (scores.uncertainty()[pool], -scores.proba[pool].max(axis=1)):
        if size >= pool.size:
            mask[pool] = True
            break
        mask[pool[np.argpartition(-priority, size - 1)[:size]]] = True
    return mask


def _top_k_json(scores: Scores, index: np.ndarray) -> list[str]:
    """The top-k column of rows `index`: [[class_id, probability], ...] as JSON text."""
    proba = scores.proba[index]
    order = np.argsort(-proba, axis=1)[:, :TOP_K]
    classes = np.asarray(scores.class_ids)
    top_classes = classes[order].tolist()
    top_proba = np.take_along_axis(proba, order, axis=1).tolist()
    return [
        json.dumps([[c, round(p, 5)] for c, p in zip(cs, ps, strict=True)])
        for cs, ps in zip(top_classes, top_proba, strict=True)
    ]


def _rows(scores: Scores, full: np.ndarray) -> Iterator[tuple[Any, ...]]:
    """Prediction rows (see _COLUMNS) in case order; `full` marks the rows with top-k."""
    predicted = np.asarray(scores.class_ids)[scores.proba.argmax(axis=1)].tolist()
    confidence = scores.proba.max(axis=1).tolist()
    uncertainty = scores.uncertainty().tolist()
    full_rows = np.flatnonzero(full)
    top = dict(zip(full_rows.tolist(), _top_k_json(scores, full_rows), strict=True))
    now = timezone.now()
    version_id = scores.version.pk
    for i, case_id in enumerate(scores.case_ids.tolist()):
        yield (
            case_id,
            version_id,
            predicted[i],
            confidence[i],
            uncertainty[i],
            top.get(i),
            now,
        )


_COLUMNS = (
    "case_id",
    "model_version_id",
    "predicted_label_id",
    "confidence",
    "uncertainty",
    "top_k",
    "created_at",
)


@transaction.atomic
def predictions_write(
    *, scores: Scores, full_case_ids: set[int], full_mask: np.ndarray | None = None
) -> int:
    """Replace `scores.version`'s predictions (idempotent): COPY on PostgreSQL, batches else.

    Rows of `full_case_ids` (or where `full_mask` is set) get their top-k probabilities.
    """
    full = np.zeros(scores.case_ids.shape[0], dtype=bool) if full_mask is None else full_mask
    if full_case_ids:
        full = full | np.isin(scores.case_ids, np.fromiter(full_case_ids, dtype=np.int64))
    Prediction.objects.filter(model_version=scores.version).delete()
    if connection.vendor == "postgresql":
        _copy_binary(scores, full)
    else:
        batch: list[Prediction] = []
        for row in _rows(scores, full):
            values = dict(zip(_COLUMNS, row, strict=True))
            values["top_k"] = json.loads(values["top_k"]) if values["top_k"] else None
            batch.append(Prediction(**values))
            if len(batch) == 5000:
                Prediction.objects.bulk_create(batch)
                batch = []
        Prediction.objects.bulk_create(batch)
    return int(scores.case_ids.shape[0])


def _copy_binary(scores: Scores, full: np.ndarray) -> None:
    """Compact rows in one binary COPY packed by numpy; the few top-k rows in a text COPY."""
    now = timezone.now()
    table = Prediction._meta.db_table
    compact = np.flatnonzero(~full)
    proba = scores.proba[compact]
    columns = [
        ("case_id", "int8", scores.case_ids[compact]),
        ("model_version_id", "int8", scores.version.pk),
        ("predicted_label_id", "int8", np.asarray(scores.class_ids)[proba.argmax(axis=1)]),
        ("confidence", "float8", proba.max(axis=1)),
        ("uncertainty", "float8", margin_uncertainty(proba)),
        ("top_k", "jsonb", None),
        ("created_at", "timestamptz", pg_timestamp(now)),
    ]
    copy_binary_rows(table, columns, compact.size)
    del proba
    with_top = np.flatnonzero(full)
    subset = Scores(
        scores.version,
        scores.case_ids[with_top],
        scores.is_eval[with_top],
        scores.rows[with_top],
        scores.proba[with_top],
        scores.class_ids,
    )
    with connection.cursor() as cursor:
        sql = f"COPY {table} ({', '.join(_COLUMNS)}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for row in _rows(subset, np.ones(with_top.size, dtype=bool)):
                copy.write_row(row)


def predictions_prune(*, project: Project) -> int:
    """Keep full coverage for the current and previous champion only (DESIGN)."""
    champions = list(
        ModelVersion.objects.filter(
            project=project, status__in=[ModelStatus.CHAMPION, ModelStatus.RETIRED]
        )
        .exclude(promoted_at=None)
        .order_by("-promoted_at")
        .values_list("pk", flat=True)[:2]
    )
    older = Prediction.objects.filter(model_version__project=project).exclude(
        model_version_id__in=champions
    )
    deleted, _ = older.filter(top_k__isnull=True).delete()
    # Of the full rows, older versions keep the stop set and the evaluation cases analysts
    # labelled (what history over versions needs); so each retrain adds ~1% of the cases
    # plus the labelled evaluation set, not the whole evaluation split.
    full = list(older.values_list("pk", "case_id"))
    if full:
        case_ids = np.array([c for _, c in full], dtype=np.int64)
        keep = stop_set_mask(project=project, case_ids=case_ids)
        labelled = np.fromiter(
            analyst_labels(project=project, split=str(Split.EVAL)), dtype=np.int64
        )
        keep |= np.isin(case_ids, labelled)
        drop = [pk for (pk, _), kept in zip(full, keep, strict=True) if not kept]
        for start in range(0, len(drop), 5000):
            Prediction.objects.filter(pk__in=drop[start : start + 5000]).delete()
        deleted += len(drop)
    return int(deleted)


def predictions_add_top_k(*, scores: Scores, case_ids: list[int]) -> int:
    """Give the champion's rows of newly queued cases their top-k (the card's alternatives).

    Queue candidates are chosen after scoring, so their rows were written compact.
    """
    position = {int(c): i for i, c in enumerate(scores.case_ids.tolist())}
    wanted = [c for c in case_ids if c in position]
    tops = _top_k_json(scores, np.array([position[c] for c in wanted], dtype=np.int64))
    rows = list(Prediction.objects.filter(model_version=scores.version, case_id__in=wanted))
    top_of = dict(zip(wanted, tops, strict=True))
    for row in rows:
        row.top_k = json.loads(top_of[row.case_id])
    Prediction.objects.bulk_update(rows, ["top_k"], batch_size=1000)
    return len(rows)
