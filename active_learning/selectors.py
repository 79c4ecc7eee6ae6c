"""Read queries of the pipeline: which labels train, detect and evaluate (DESIGN "Decisions").

- Analysts' labels are resolved labels from annotations, consensus, review or adjudication.
- Detection checks every pool case that has a label: the analysts' where present, else given.
- Training uses pool cases only: analysts' labels (weight 1) plus non-doubtful given labels at
  `given_label_weight` (none when it is 0). Evaluation cases never train anything.
- Evaluation uses analysts' labels of the evaluation split only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from active_learning.models import ModelStatus, ModelVersion
from labeling.models import Case, LabelClass, Project, ResolutionSource, ResolvedLabel, Split

ANALYST_SOURCES = (
    ResolutionSource.ANNOTATION,
    ResolutionSource.CONSENSUS,
    ResolutionSource.REVIEW,
    ResolutionSource.ADJUDICATED,
)


@dataclass
class LabelSet:
    """Aligned arrays: one row per labelled case. `labels` hold LabelClass ids."""

    case_ids: np.ndarray
    hashes: list[str]
    labels: np.ndarray
    weights: np.ndarray
    from_analyst: np.ndarray

    def __len__(self) -> int:
        return int(self.case_ids.shape[0])


def _label_set(rows: list[tuple[int, str, int, float, bool]]) -> LabelSet:
    rows.sort()
    return LabelSet(
        case_ids=np.array([r[0] for r in rows], dtype=np.int64),
        hashes=[r[1] for r in rows],
        labels=np.array([r[2] for r in rows], dtype=np.int64),
        weights=np.array([r[3] for r in rows], dtype=np.float64),
        from_analyst=np.array([r[4] for r in rows], dtype=bool),
    )


def project_classes(*, project: Project) -> list[LabelClass]:
    """The project's classes in their fixed column order (order, then name)."""
    return list(LabelClass.objects.filter(project=project).order_by("order", "name", "id"))


def analyst_labels(*, project: Project, split: str) -> dict[int, int]:
    """case id -> label id of the analysts' current resolved labels in `split`."""
    return dict(
        ResolvedLabel.objects.filter(
            case__project=project,
            case__split=split,
            source__in=ANALYST_SOURCES,
            label__isnull=False,
            excluded=False,
        ).values_list("case_id", "label_id")
    )


def _cases(project: Project, split: str) -> list[tuple[int, str, int | None]]:
    return list(
        Case.objects.filter(project=project, split=split)
        .order_by()
        .values_list("id", "content_hash", "given_label_id")
    )


def detection_set(*, project: Project) -> LabelSet:
    """Pool cases with a label to check: the analysts' label overrides the given one."""
    analysts = analyst_labels(project=project, split=Split.POOL)
    rows = []
    for case_id, digest, given in _cases(project, Split.POOL):
        label = analysts.get(case_id, given)
        if label is not None:
            rows.append((case_id, digest, label, 1.0, case_id in analysts))
    return _label_set(rows)


def doubtful_case_ids(*, project: Project) -> set[int]:
    return set(
        ResolvedLabel.objects.filter(case__project=project, doubtful=True).values_list(
            "case_id", flat=True
        )
    )


def training_set(*, project: Project) -> LabelSet:
    """The deciding model's training snapshot (pool split only)."""
    analysts = analyst_labels(project=project, split=Split.POOL)
    weight = float(project.given_label_weight)
    doubtful = doubtful_case_ids(project=project) if weight > 0 else set()
    rows = []
    for case_id, digest, given in _cases(project, Split.POOL):
        if case_id in analysts:
            rows.append((case_id, digest, analysts[case_id], 1.0, True))
        elif weight > 0 and given is not None and case_id not in doubtful:
            rows.append((case_id, digest, given, weight, False))
    return _label_set(rows)


def evaluation_set(*, project: Project) -> LabelSet:
    """Analysts' labels of the evaluation split."""
    analysts = analyst_labels(project=project, split=Split.EVAL)
    hashes = dict(
        Case.objects.filter(pk__in=list(analysts)).order_by().values_list("id", "content_hash")
    )
    return _label_set([(cid, hashes[cid], label, 1.0, True) for cid, label in analysts.items()])


def champion_of(*, project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, status=ModelStatus.CHAMPION).first()
