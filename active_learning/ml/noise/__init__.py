"""Label-error detection: out-of-fold probabilities and confident learning, on numpy only.

Vocabulary: ``labels`` are given (possibly wrong) class indices ``(n,)`` in ``0..n_classes-1``;
``pred_probs`` are out-of-fold probabilities ``(n, n_classes)``; the confident joint ``C`` is
``(n_classes, n_classes)`` with ``C[given, true]`` counts (Northcutt, Jiang & Chuang, "Confident
Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021). Written independently of cleanlab
(AGPL-3.0), which is only a test and benchmark baseline.

A *view* is one ``(n, n_classes)`` probability matrix over the same cases: the embedding model's
(confident learning above), the neighbours' votes (``neighbours``) and the lexical model's
(``lexical``). ``detect_label_issues`` combines them into a ``Detection`` (score: higher is more
likely wrong; prune set; suggested class, its probability and the views agreeing with it;
``signals``, an ``(n, len(SIGNALS))`` matrix). Once reviewers have answered enough issues
(``MIN_REVIEWS``), ``fit_reviewer_model`` learns "really wrong" from ``reviewer_features`` of the
reviewed rows and ``rerank`` scores the open ones.
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
from active_learning.ml.noise.lexical import lexical_out_of_fold_proba
from active_learning.ml.noise.neighbours import neighbour_label_votes
from active_learning.ml.noise.out_of_fold import ensemble_out_of_fold_proba, out_of_fold_proba
from active_learning.ml.noise.reviewers import (
    MIN_REVIEWS,
    Corrections,
    contenders,
    corrections,
    fit_reviewer_model,
    rerank,
    reviewer_features,
)
from active_learning.ml.noise.views import (
    SIGNALS,
    VIEWS,
    Detection,
    auxiliary_views,
    combine_views,
    contender_score,
    detect_label_issues,
    view_weights,
)

__all__ = [
    "BAD_LABELS",
    "BAD_PARAMETER",
    "BAD_PRED_PROBS",
    "EMPTY_INPUT",
    "FILTERS",
    "MIN_REVIEWS",
    "RANKINGS",
    "SHAPE_MISMATCH",
    "SIGNALS",
    "TOO_FEW_CLASSES",
    "TOO_FEW_SPLITS",
    "UNKNOWN_FILTER",
    "UNKNOWN_RANKING",
    "VIEWS",
    "Corrections",
    "Detection",
    "NoiseError",
    "auxiliary_views",
    "calibrate_confident_joint",
    "combine_views",
    "confident_joint",
    "confident_thresholds",
    "contender_score",
    "contenders",
    "corrections",
    "detect_label_issues",
    "ensemble_out_of_fold_proba",
    "find_label_issues",
    "find_label_issues_iterative",
    "fit_reviewer_model",
    "label_quality_scores",
    "lexical_out_of_fold_proba",
    "neighbour_label_votes",
    "out_of_fold_proba",
    "rank_label_issues",
    "rerank",
    "reviewer_features",
    "view_weights",
]
