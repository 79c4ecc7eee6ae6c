"""The warm-up comparison: champion and challenger judged on the analysts' pool labels.

While the evaluation split has too few labels to judge a challenger, the analysts' pool labels
are the evidence there is. Both training sets (the champion's as it was fitted, the challenger's)
are refitted with one recipe (`active_learning.ml.crossfit`) without each fold of those labels
and predict that fold, so neither side is scored on a label it trained on. The recipe is the
deciding model's logistic regression at a fixed C without calibration: both sides get the same
one, so the comparison is of their labels, and a temperature never changes the predicted class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from active_learning.ml.classifiers import DEFAULT_C, make_classifier
from active_learning.ml.crossfit import N_FOLDS, TrainingRows, cross_fit, rows_capped
from active_learning.ml.metrics import EvaluationReport
from active_learning.ml.paired import PairedF1, PairedRecall, paired_recall
from active_learning.ml.promotion import MIN_WARMUP_LABELS, RECALL_TOLERANCE
from active_learning.models import ModelVersion
from active_learning.selectors import analyst_labels, split_cases, training_set
from active_learning.services import training
from active_learning.services.embeddings import matrix_load
from active_learning.services.training import (
    ESTIMATOR,
    TRAINING_ROWS_KEY,
    paired_f1_of,
    prohibited_scores,
    report_of,
)
from labeling.models import LabelClass, Project, Split, Tier

# Refitting 2 x N_FOLDS times: at most this many rows per side (all analysts' labels kept).
MAX_ROWS = 20_000


@dataclass(frozen=True)
class WarmupComparison:
    """Both sides' reports on the same analysts' pool labels, out of fold, and the paired guard."""

    challenger: EvaluationReport
    champion: EvaluationReport
    guard: PairedRecall
    n_folds: int
    paired_f1: PairedF1


def pool_label_count(*, project: Project) -> int:
    """How many analysts' pool labels the warm-up comparison would judge on."""
    return len(analyst_labels(project=project, split=Split.POOL))


def _rows_of(version: ModelVersion, today: TrainingRows) -> TrainingRows:
    """The rows `version` was fitted on; for a version stored before they were kept, its snapshot
    ids with today's labels (ids without one dropped), or today's rows without a snapshot."""
    params = version.params or {}
    stored = params.get(TRAINING_ROWS_KEY)
    if stored and Path(stored).exists():
        with np.load(stored) as data:
            return TrainingRows(data["case_ids"], data["labels"], data["weights"])
    ids_file = params.get("snapshot_ids_file")
    if ids_file and Path(ids_file).exists():
        keep = np.isin(today.case_ids, np.load(ids_file))
        return TrainingRows(today.case_ids[keep], today.labels[keep], today.weights[keep])
    return today


def _present(rows: TrainingRows, ids: np.ndarray) -> TrainingRows:
    keep = np.isin(rows.case_ids, ids)
    return TrainingRows(rows.case_ids[keep], rows.labels[keep], rows.weights[keep])


def warmup_compare(
    *,
    project: Project,
    champion: ModelVersion,
    challenger_version: ModelVersion,
    classes: list[LabelClass],
) -> WarmupComparison | None:
    """The cross-fitted comparison, or None with fewer than MIN_WARMUP_LABELS analysts' labels
    (or labels of a single class) in the pool."""
    analysts = analyst_labels(project=project, split=Split.POOL)
    if len(analysts) < MIN_WARMUP_LABELS:
        return None
    scored_ids = np.fromiter(sorted(analysts), dtype=np.int64, count=len(analysts))
    scored_labels = np.array([analysts[int(i)] for i in scored_ids], dtype=np.int64)
    if np.unique(scored_labels).size < 2:
        return None
    today = training_set(project=project)
    challenger = TrainingRows(today.case_ids, today.labels, today.weights)
    champion_rows = _rows_of(champion, challenger)
    challenger = _rows_of(challenger_version, challenger)
    seed = abs(int(project.split_seed)) % (2**32)
    challenger = rows_capped(challenger, keep_ids=scored_ids, cap=MAX_ROWS, seed=seed)
    champion_rows = rows_capped(champion_rows, keep_ids=scored_ids, cap=MAX_ROWS, seed=seed)
    ids, hashes, _ = split_cases(project, Split.POOL)
    # Cases imported or edited while this retrain ran have no vector yet (the next one embeds
    # them), and rows of cases deleted or moved since a version was fitted no features: drop both.
    known = matrix_load().rows_for(hashes) >= 0
    if not bool(known.all()):
        ids, hashes = ids[known], [h for h, k in zip(hashes, known.tolist(), strict=True) if k]
        scored = np.isin(scored_ids, ids)
        scored_ids, scored_labels = scored_ids[scored], scored_labels[scored]
    challenger, champion_rows = _present(challenger, ids), _present(champion_rows, ids)
    class_ids = [c.pk for c in classes]

    def features(case_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(ids, case_ids)
        return training.features_for([hashes[int(p)] for p in pos])

    def fit_predict(X: np.ndarray, y: np.ndarray, w: np.ndarray, X_test: np.ndarray) -> np.ndarray:
        model = make_classifier(ESTIMATOR, classes=class_ids, calibration=None, C=DEFAULT_C)
        return np.asarray(model.fit(X, y, sample_weight=w).predict_proba(X_test))

    fitted = cross_fit(
        scored_ids=scored_ids,
        scored_labels=scored_labels,
        champion=champion_rows,
        challenger=challenger,
        features=features,
        fit_predict=fit_predict,
        n_classes=len(class_ids),
        n_folds=N_FOLDS,
        seed=seed,
    )
    prohibited = {c.pk for c in classes if c.tier == Tier.PROHIBITED}
    guard = paired_recall(
        np.isin(scored_labels, list(prohibited)),
        prohibited_scores(fitted.champion, classes),
        prohibited_scores(fitted.challenger, classes),
        target_precision=project.target_precision,
        tolerance=RECALL_TOLERANCE,
    )
    paired_f1 = paired_f1_of(classes, scored_labels, fitted.champion, fitted.challenger)
    return WarmupComparison(
        challenger=report_of(
            project=project, classes=classes, y=scored_labels, proba=fitted.challenger, weights=None
        ),
        champion=report_of(
            project=project, classes=classes, y=scored_labels, proba=fitted.champion, weights=None
        ),
        guard=guard,
        n_folds=N_FOLDS,
        paired_f1=paired_f1,
    )
