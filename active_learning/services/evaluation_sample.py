"""The evaluation sample's design: which evaluation-split cases get drawn, in what order.

A stratified design (`active_learning.ml.evaluation_design`) is made once per project, from the
first champion's predicted classes over the evaluation split (uniform before any model), and
kept: cases are drawn in ascending key; each evaluation label weighs 1 / its inclusion
probability, so every metric stays an estimate for the whole split. A uniform design made before
any model is replaced by a stratified one while no evaluation case has been drawn yet. Cases
imported later join the design in their predicted stratum at that stratum's size measure (the
existing cases' sizes never change, so drawn cases keep their probabilities). The draw order
and each label's weight are read by `active_learning.selectors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from django.db import transaction

from active_learning.ml.evaluation_design import design
from active_learning.models import EvaluationDesign
from active_learning.selectors import evaluation_drawn
from labeling.models import Case, Project, Split
from workbench.core.hashing import unit_hashes

if TYPE_CHECKING:
    from active_learning.services.scoring import Scores

BATCH = 5000


def _uniforms(project: Project, case_ids: np.ndarray) -> np.ndarray:
    return unit_hashes(project.split_seed, "eval-design", values=case_ids.tolist())


def _strata(scores: Scores | None, case_ids: np.ndarray) -> np.ndarray:
    """Each case's predicted class id under `scores` (-1 without scores or a score row)."""
    if scores is None or scores.case_ids.size == 0:
        return np.full(case_ids.size, -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(scores.case_ids, case_ids), scores.case_ids.size - 1)
    found = scores.case_ids[pos] == case_ids
    predicted = np.asarray(scores.class_ids, dtype=np.int64)[scores.proba[pos].argmax(axis=1)]
    return np.where(found, predicted, -1)


def _rows(
    project: Project,
    case_ids: np.ndarray,
    strata: np.ndarray,
    sizes: np.ndarray,
    version: int | None,
) -> list[EvaluationDesign]:
    keys = _uniforms(project, case_ids) / sizes
    return [
        EvaluationDesign(
            project=project,
            case_id=int(case_id),
            stratum_id=None if stratum < 0 else int(stratum),
            size=float(size),
            key=float(key),
            model_version_id=version,
        )
        for case_id, stratum, size, key in zip(
            case_ids.tolist(), strata.tolist(), sizes.tolist(), keys.tolist(), strict=True
        )
    ]


@transaction.atomic
def evaluation_design_ensure(*, project: Project, scores: Scores | None) -> int:
    """Make the project's design, or add the evaluation cases it lacks; returns rows written."""
    designed = EvaluationDesign.objects.filter(project=project)
    stratified = designed.exclude(model_version=None).exists()
    if scores is not None and not stratified and not designed.filter(evaluation_drawn()).exists():
        designed.delete()  # a uniform design nobody has drawn from yet: stratify instead
    version = scores.version.pk if scores is not None else None
    have = set(designed.values_list("case_id", flat=True))
    eval_ids = np.fromiter(
        Case.objects.filter(project=project, split=Split.EVAL).values_list("pk", flat=True),
        dtype=np.int64,
    )
    missing = np.sort(eval_ids[~np.isin(eval_ids, np.fromiter(have, dtype=np.int64))])
    if missing.size == 0:
        return 0
    strata = _strata(scores, missing)
    if not have:
        plan = design(strata, _uniforms(project, missing))
        rows = _rows(project, missing, strata, plan.sizes, version)
    else:
        rows = _rows(project, missing, strata, _joining_sizes(project, strata), version)
    EvaluationDesign.objects.bulk_create(rows, batch_size=BATCH)
    return len(rows)


def _joining_sizes(project: Project, strata: np.ndarray) -> np.ndarray:
    """Sizes of cases joining a made design: their stratum's mean size (the design's mean size
    for a stratum it does not have)."""
    rows = EvaluationDesign.objects.filter(project=project).values_list("stratum_id", "size")
    by_stratum: dict[int, list[float]] = {}
    for stratum, size in rows:
        by_stratum.setdefault(-1 if stratum is None else int(stratum), []).append(size)
    every = [s for sizes in by_stratum.values() for s in sizes]
    overall = float(np.mean(every)) if every else 1.0
    means = {k: float(np.mean(v)) for k, v in by_stratum.items()}
    return np.array([means.get(int(s), overall) for s in strata.tolist()], dtype=float)
