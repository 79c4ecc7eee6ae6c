"""The warm-up comparison: champion and challenger judged on labels that sample the population.

While the evaluation split has too few labels to judge a challenger, the analysts' pool labels
add evidence, but only the pool probe's (`active_learning.ml.pool_probe`): a uniform random
sample of the pool. The rest are the strategy's picks, the cases the model was least sure of; in
the loop benchmark a challenger that won 93% of paired resamples of those was 0.052 worse on the
population. Scored: the probe's labels and the evaluation labels there are (both probability
samples of the same cases, each sample's weights scaled to average 1, so each label counts as
one label of its sample and the evaluation design's weights keep that sample unbiased).

Both training sets (the champion's as it was fitted, the challenger's) are refitted with one
recipe (`active_learning.ml.crossfit`) on all of their rows but each fold of the probe's labels,
and predict that fold and the evaluation labels (averaged over folds), so neither side is scored
on a label it trained on. The recipe is the deciding model's logistic regression at a fixed C
without calibration: both sides get the same one, so the comparison is of their labels (a
temperature never changes the predicted class, and the one uncalibrated recipe on both sides
keeps their log losses comparable).
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
from active_learning.selectors import (
    LabelSet,
    evaluation_set,
    probe_set,
    split_cases,
    training_set,
)
from active_learning.services import training
from active_learning.services.embeddings import matrix_load
from active_learning.services.training import (
    CLASS_WEIGHT,
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
    """Both sides' reports on the same labels (the probe's out of fold, and the evaluation
    labels), the paired guard, and how many of each were scored."""

    challenger: EvaluationReport
    champion: EvaluationReport
    guard: PairedRecall
    n_folds: int
    paired_f1: PairedF1
    n_probe: int = 0
    n_evaluation: int = 0


@dataclass(frozen=True)
class WarmupEvidence:
    """The labels a warm-up comparison would be judged on (vectors present)."""

    probe: LabelSet
    evaluation: LabelSet

    def __len__(self) -> int:
        return len(self.probe) + len(self.evaluation)

    @property
    def n_classes(self) -> int:
        return int(np.unique(np.concatenate([self.probe.labels, self.evaluation.labels])).size)


def _embedded(labels: LabelSet) -> LabelSet:
    if len(labels) == 0:
        return labels
    return labels.subset(matrix_load().rows_for(labels.hashes) >= 0)


def warmup_evidence(*, project: Project) -> WarmupEvidence:
    """The probe's labels and the evaluation labels, each with vectors."""
    return WarmupEvidence(
        probe=_embedded(probe_set(project=project)),
        evaluation=_embedded(evaluation_set(project=project)),
    )


def _unit_mean(weights: np.ndarray) -> np.ndarray:
    """`weights` scaled to average 1 (a sample's labels count as that many labels)."""
    weights = np.asarray(weights, dtype=float)
    return weights / weights.mean() if weights.size else weights


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
    """The cross-fitted comparison, or None with fewer than MIN_WARMUP_LABELS of the probe's and
    evaluation labels together (or labels of a single class)."""
    evidence = warmup_evidence(project=project)
    if len(evidence) < MIN_WARMUP_LABELS or evidence.n_classes < 2:
        return None
    probe, evaluation = evidence.probe, evidence.evaluation
    scored_ids, scored_labels = probe.case_ids, probe.labels
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
    challenger, champion_rows = _present(challenger, ids), _present(champion_rows, ids)
    class_ids = [c.pk for c in classes]

    def features(case_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(ids, case_ids)
        return training.features_for([hashes[int(p)] for p in pos])

    def fit_predict(X: np.ndarray, y: np.ndarray, w: np.ndarray, X_test: np.ndarray) -> np.ndarray:
        model = make_classifier(
            ESTIMATOR,
            classes=class_ids,
            calibration=None,
            C=DEFAULT_C,
            class_weight=CLASS_WEIGHT,
        )
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
        extra_X=training.features_for(evaluation.hashes) if len(evaluation) else None,
    )
    y = np.concatenate([scored_labels, evaluation.labels])
    weights = np.concatenate([_unit_mean(probe.weights), _unit_mean(evaluation.weights)])

    def both(pool: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
        return pool if extra is None or extra.shape[0] == 0 else np.concatenate([pool, extra])

    old = both(fitted.champion, fitted.champion_extra)
    new = both(fitted.challenger, fitted.challenger_extra)
    prohibited = {c.pk for c in classes if c.tier == Tier.PROHIBITED}
    guard = paired_recall(
        np.isin(y, list(prohibited)),
        prohibited_scores(old, classes),
        prohibited_scores(new, classes),
        target_precision=project.target_precision,
        sample_weight=weights,
        tolerance=RECALL_TOLERANCE,
    )
    paired_f1 = paired_f1_of(classes, y, old, new, weights)
    return WarmupComparison(
        challenger=report_of(project=project, classes=classes, y=y, proba=new, weights=weights),
        champion=report_of(project=project, classes=classes, y=y, proba=old, weights=weights),
        guard=guard,
        n_folds=N_FOLDS,
        paired_f1=paired_f1,
        n_probe=len(probe),
        n_evaluation=len(evaluation),
    )
