"""Label-error detection: out-of-fold probabilities and confident learning, on numpy only.

Vocabulary: ``labels`` are given (possibly wrong) class indices ``(n,)`` in ``0..n_classes-1``;
``pred_probs`` are out-of-fold probabilities ``(n, n_classes)``; the confident joint ``C`` is
``(n_classes, n_classes)`` with ``C[given, true]`` counts (Northcutt, Jiang & Chuang, "Confident
Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021). Written independently of cleanlab
(AGPL-3.0), which is only a test and benchmark baseline.
"""

from active_learning.ml.noise._common import (
    BAD_LABELS,
    BAD_PARAMETER,
    BAD_PRED_PROBS,
    EMPTY_INPUT,
    FILTERS,
    RANKINGS,
    SHAPE_MISMATCH,
    TOO_FEW_CLASSES,
    TOO_FEW_SPLITS,
    UNKNOWN_FILTER,
    UNKNOWN_RANKING,
    NoiseError,
)
from active_learning.ml.noise.confident_learning import (
    calibrate_confident_joint,
    confident_joint,
    confident_thresholds,
    find_label_issues,
    label_quality_scores,
    rank_label_issues,
)
from active_learning.ml.noise.iterative import find_label_issues_iterative
from active_learning.ml.noise.out_of_fold import ensemble_out_of_fold_proba, out_of_fold_proba

__all__ = [
    "BAD_LABELS",
    "BAD_PARAMETER",
    "BAD_PRED_PROBS",
    "EMPTY_INPUT",
    "FILTERS",
    "RANKINGS",
    "SHAPE_MISMATCH",
    "TOO_FEW_CLASSES",
    "TOO_FEW_SPLITS",
    "UNKNOWN_FILTER",
    "UNKNOWN_RANKING",
    "NoiseError",
    "calibrate_confident_joint",
    "confident_joint",
    "confident_thresholds",
    "ensemble_out_of_fold_proba",
    "find_label_issues",
    "find_label_issues_iterative",
    "label_quality_scores",
    "out_of_fold_proba",
    "rank_label_issues",
]
