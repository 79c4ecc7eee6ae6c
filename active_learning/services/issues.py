"""Label-issue detection: out-of-fold confident learning over the pool's labels.

Every pool case with a label is checked (the analysts' label overrides the given one). Each gets
a score (1 - out-of-fold probability of its label: higher is more likely wrong), a suggested
label, and whether confident learning's prune set (`both`) holds it. A given label in the prune
set that no analyst confirmed is *doubtful*: kept out of the deciding model's training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from django.db import transaction

from active_learning.ml.noise import find_label_issues_iterative, label_quality_scores
from active_learning.models import Job, LabelIssue
from active_learning.selectors import detection_set, project_classes
from active_learning.services.embeddings import matrix_load
from labeling.models import Case, Project, ResolutionSource, ResolvedLabel

MIN_LABELS = 20
_WRITE_BATCH = 5000

SKIP_TOO_FEW = "skipped: {n} labelled pool cases, {needed} needed"
SKIP_ONE_CLASS = "skipped: labels of fewer than two classes"
ERR_NOT_EMBEDDED = "{n} labelled cases have no embedding yet: run embed_cases first."


def _features(hashes: list[str]) -> np.ndarray:
    matrix = matrix_load()
    rows = matrix.rows_for(hashes)
    if (rows < 0).any():
        raise RuntimeError(ERR_NOT_EMBEDDED.format(n=int((rows < 0).sum())))
    return np.asarray(matrix.vectors[rows], dtype=np.float32)


def find_label_issues(
    *,
    project: Project,
    job: Job | None = None,
    progress: Callable[[float, str], None] | None = None,
    rounds: int = 2,
) -> dict[str, Any]:
    """Score every labelled pool case, store LabelIssue rows and the doubtful flags."""
    labels = detection_set(project=project)
    if len(labels) < MIN_LABELS:
        return {"skipped": SKIP_TOO_FEW.format(n=len(labels), needed=MIN_LABELS)}
    classes = project_classes(project=project)
    column = {c.pk: i for i, c in enumerate(classes)}
    y = np.array([column[int(label)] for label in labels.labels], dtype=np.int64)
    if np.unique(y).size < 2:
        return {"skipped": SKIP_ONE_CLASS}
    X = _features(labels.hashes)
    if progress:
        progress(0.1, f"out-of-fold models on {len(labels)} labels")
    mask, proba = find_label_issues_iterative(
        X, y, n_classes=len(classes), rounds=rounds, filter_by="both", random_state=0
    )
    quality = label_quality_scores(y, proba, method="self_confidence")
    suggested = proba.argmax(axis=1)
    if progress:
        progress(0.8, "writing label issues")
    class_ids = [c.pk for c in classes]
    issues = [
        LabelIssue(
            project=project,
            case_id=int(case_id),
            given_label_id=int(label),
            suggested_label_id=class_ids[int(suggested[i])],
            score=float(1.0 - quality[i]),
            self_confidence=float(quality[i]),
            in_prune_set=bool(mask[i]),
            job=job,
        )
        for i, (case_id, label) in enumerate(zip(labels.case_ids, labels.labels, strict=True))
    ]
    flagged_given = {
        int(cid)
        for cid, flagged, analyst in zip(labels.case_ids, mask, labels.from_analyst, strict=True)
        if flagged and not analyst
    }
    with transaction.atomic():
        LabelIssue.objects.filter(project=project).delete()
        LabelIssue.objects.bulk_create(issues, batch_size=_WRITE_BATCH)
        _sync_doubtful(project=project, flagged_given=flagged_given)
    return {
        "checked": len(labels),
        "flagged": int(mask.sum()),
        "doubtful_given": len(flagged_given),
    }


def _sync_doubtful(*, project: Project, flagged_given: set[int]) -> None:
    """Given-label resolutions are doubtful exactly while detection flags them.

    Resolutions made by analysts (including a noise flag without a label) are left alone.
    """
    given = ResolvedLabel.objects.filter(case__project=project, source=ResolutionSource.GIVEN)
    given.filter(doubtful=True).exclude(case_id__in=flagged_given).update(doubtful=False)
    existing = set(
        ResolvedLabel.objects.filter(case_id__in=flagged_given).values_list("case_id", flat=True)
    )
    given.filter(case_id__in=flagged_given, doubtful=False).update(doubtful=True)
    missing = sorted(flagged_given - existing)
    label_of = dict(
        Case.objects.filter(pk__in=missing).order_by().values_list("pk", "given_label_id")
    )
    ResolvedLabel.objects.bulk_create(
        [
            ResolvedLabel(
                case_id=cid, label_id=label_of[cid], source=ResolutionSource.GIVEN, doubtful=True
            )
            for cid in missing
        ],
        batch_size=_WRITE_BATCH,
    )
