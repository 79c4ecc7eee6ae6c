"""Scoring the pool with the champion and storing bounded predictions (DESIGN "Prediction volume").

Every case gets a compact row (predicted label, confidence, uncertainty) for the version that
scored it; evaluation cases, a fixed random stop set and the queue's candidates also get their
top-k probabilities. Rows are written with COPY on PostgreSQL. When a new champion takes over,
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

from active_learning.models import ModelStatus, ModelVersion, Prediction
from active_learning.services.embeddings import matrix_load
from active_learning.services.training import load_version
from labeling.models import Case, Project, Split
from labeling.services.queue.draws import unit_hash

CHUNK = 100_000
TOP_K = 5
STOP_SET_FRACTION = 0.01
ERR_NOT_EMBEDDED = "{n} cases have no embedding yet: run embed_cases first."


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
        if self.proba.shape[1] < 2:
            return np.zeros(self.proba.shape[0], dtype=np.float32)
        top2 = -np.partition(-self.proba, 1, axis=1)[:, :2]
        return (1.0 - (top2[:, 0] - top2[:, 1])).astype(np.float32)


def in_stop_set(*, project: Project, case_id: int) -> bool:
    return unit_hash(project.split_seed, "stop-set", case_id) < STOP_SET_FRACTION


def score_pool(
    *,
    project: Project,
    version: ModelVersion,
    full_case_ids: set[int] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Scores:
    """Score every case of the project with `version` and store its predictions."""
    cases = list(
        Case.objects.filter(project=project)
        .order_by("id")
        .values_list("id", "content_hash", "split")
    )
    case_ids = np.fromiter((c[0] for c in cases), dtype=np.int64, count=len(cases))
    is_eval = np.fromiter((c[2] == Split.EVAL for c in cases), dtype=bool, count=len(cases))
    matrix = matrix_load()
    rows = matrix.rows_for(c[1] for c in cases)
    if (rows < 0).any():
        raise RuntimeError(ERR_NOT_EMBEDDED.format(n=int((rows < 0).sum())))
    model = load_version(version)
    class_ids = [int(c) for c in model.classes_]
    proba = np.empty((len(cases), len(class_ids)), dtype=np.float32)
    for start in range(0, len(cases), CHUNK):
        stop = min(start + CHUNK, len(cases))
        proba[start:stop] = model.predict_proba(np.asarray(matrix.vectors[rows[start:stop]]))
        if progress:
            progress(0.6 * stop / max(1, len(cases)), f"scored {stop} of {len(cases)} cases")
    scores = Scores(version, case_ids, is_eval, rows, proba, class_ids)
    full = set(full_case_ids or ()) | {int(c) for c in case_ids[is_eval]}
    full |= {int(c) for c in case_ids if in_stop_set(project=project, case_id=int(c))}
    predictions_write(scores=scores, full_case_ids=full)
    if progress:
        progress(1.0, f"stored predictions for {len(cases)} cases")
    return scores


def _rows(scores: Scores, full_case_ids: set[int]) -> Iterator[tuple[Any, ...]]:
    predicted = scores.proba.argmax(axis=1)
    confidence = scores.proba.max(axis=1)
    uncertainty = scores.uncertainty()
    classes = np.asarray(scores.class_ids)
    now = timezone.now()
    order = np.argsort(-scores.proba, axis=1)[:, :TOP_K]
    for i, case_id in enumerate(scores.case_ids.tolist()):
        top = None
        if case_id in full_case_ids:
            top = json.dumps(
                [[int(classes[j]), round(float(scores.proba[i, j]), 5)] for j in order[i]]
            )
        yield (
            case_id,
            scores.version.pk,
            int(classes[predicted[i]]),
            float(confidence[i]),
            float(uncertainty[i]),
            top,
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
def predictions_write(*, scores: Scores, full_case_ids: set[int]) -> int:
    """Replace `scores.version`'s predictions (idempotent): COPY on PostgreSQL, batches else."""
    Prediction.objects.filter(model_version=scores.version).delete()
    rows = _rows(scores, full_case_ids)
    if connection.vendor == "postgresql":
        table = Prediction._meta.db_table
        with connection.cursor() as cursor:
            sql = f"COPY {table} ({', '.join(_COLUMNS)}) FROM STDIN"
            with cursor.cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
    else:
        batch: list[Prediction] = []
        for row in rows:
            values = dict(zip(_COLUMNS, row, strict=True))
            values["top_k"] = json.loads(values["top_k"]) if values["top_k"] else None
            batch.append(Prediction(**values))
            if len(batch) == 5000:
                Prediction.objects.bulk_create(batch)
                batch = []
        Prediction.objects.bulk_create(batch)
    return int(scores.case_ids.shape[0])


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
    # Evaluation cases, the stop set and queue candidates are the rows with top-k: kept.
    older = Prediction.objects.filter(model_version__project=project).exclude(
        model_version_id__in=champions
    )
    removable = older.filter(top_k__isnull=True)
    deleted, _ = removable.delete()
    return int(deleted)
