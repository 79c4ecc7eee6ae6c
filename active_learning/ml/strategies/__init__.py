"""Query strategies: which unlabeled pool rows an analyst should label next, and why.

Each ``select_*`` function takes stored arrays (``proba`` ``(n, n_classes)``, embeddings ``X``
``(n, dim)``) and returns a ``Selection`` of distinct row indices, scores and reason dicts.
Cold start (no model yet) lives in ``active_learning.ml.coldstart``.
"""

from active_learning.ml.strategies._common import (
    BAD_CHUNK_SIZE,
    BAD_EXCLUDE,
    BAD_N_INSTANCES,
    BAD_PARAMETER,
    BAD_PROBA,
    EMPTY_POOL,
    POOL_EXHAUSTED,
    ROWS_MISMATCH,
    UNKNOWN_MEASURE,
    Selection,
    StrategyError,
)
from active_learning.ml.strategies.committee import (
    COMMITTEE_MEASURES,
    committee_member_proba,
    fit_bagged_committee,
    kl_to_consensus,
    select_committee,
    vote_entropy,
)
from active_learning.ml.strategies.diversity import (
    centroid_density,
    select_density_weighted,
    select_diverse,
)
from active_learning.ml.strategies.uncertainty import (
    MEASURES,
    StoredProbaClassifier,
    entropy,
    informativeness,
    least_confidence,
    margin,
    measure_scores,
    select_random,
    select_uncertainty,
)

__all__ = [
    "BAD_CHUNK_SIZE",
    "BAD_EXCLUDE",
    "BAD_N_INSTANCES",
    "BAD_PARAMETER",
    "BAD_PROBA",
    "COMMITTEE_MEASURES",
    "EMPTY_POOL",
    "MEASURES",
    "POOL_EXHAUSTED",
    "ROWS_MISMATCH",
    "UNKNOWN_MEASURE",
    "Selection",
    "StoredProbaClassifier",
    "StrategyError",
    "centroid_density",
    "committee_member_proba",
    "entropy",
    "fit_bagged_committee",
    "informativeness",
    "kl_to_consensus",
    "least_confidence",
    "margin",
    "measure_scores",
    "select_committee",
    "select_density_weighted",
    "select_diverse",
    "select_random",
    "select_uncertainty",
    "vote_entropy",
]
