"""Read queries of the pipeline: which labels train, detect and evaluate (DESIGN "Decisions").

- Analysts' labels are resolved labels from annotations, consensus, review or adjudication.
- Detection checks every pool case that has a label: the analysts' where present, else given.
- Training uses pool cases only: analysts' labels (weight 1) plus non-doubtful given labels at
  `given_label_weight` (none when it is 0). Evaluation cases never train anything.
- Evaluation uses the evaluation split's labels from evaluation draws only: the analysts' label
  (one per case by default, `evaluation_overlap`; with more, none while they tie), or a
  reviewer's decision of their tie made without any model's view; otherwise the majority of the current queue labels
  (a decision made beside a model's suggestion is not an evaluation label; gold items, decided
  pool cases served back to measure analysts, never count). Each weighs 1 / its inclusion probability under the
  project's evaluation design (stratified draws; one probability per case, whatever its items).
- The pool probe's labels (`probe_set`) are a uniform sample of the pool: the analysts' pool
  labels of cases below the probe's threshold (`active_learning.ml.pool_probe`), weighing 1 / t.
- Detection also scores the evaluation split's given labels (`evaluation_check_set`), out of
  sample by the pool-trained fold models: they are predicted, never trained on.
- Excluded cases (a reviewer's exclusion) never train, evaluate or get checked.
- Decided cases (resolved by review or adjudication) are still checked, with the decision as
  their label, but never flagged again (`decided_case_ids`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef

from active_learning.ml.evaluation_design import inverse_inclusion_weights
from active_learning.ml.pool_probe import probe_keys, probe_sample, probe_threshold, probe_weights
from active_learning.models import EvaluationDesign, ModelStatus, ModelVersion
from labeling.models import (
    Annotation,
    AnnotationSource,
    Case,
    LabelClass,
    Project,
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolutionSource,
    ResolvedLabel,
    Split,
)
from labeling.services.resolution import AUTHORITATIVE_SOURCES

ANALYST_SOURCES = (
    ResolutionSource.ANNOTATION,
    ResolutionSource.CONSENSUS,
    ResolutionSource.REVIEW,
    ResolutionSource.ADJUDICATED,
)


@dataclass
class LabelSet:
    """Aligned arrays: one row per labelled case. `labels` hold LabelClass ids; `given` (the
    detection set only) the cases' given label ids, -1 for none."""

    case_ids: np.ndarray
    hashes: list[str]
    labels: np.ndarray
    weights: np.ndarray
    from_analyst: np.ndarray
    given: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.case_ids.shape[0])

    def subset(self, keep: np.ndarray) -> LabelSet:
        """The rows where the boolean mask `keep` holds, in their order."""
        return _subset(
            self.case_ids,
            self.hashes,
            keep,
            self.labels,
            self.weights,
            self.from_analyst,
            self.given,
        )


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


def split_cases(project: Project, split: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(ids, content hashes, given label ids or -1) of the split's cases, sorted by id.

    One query read straight from the cursor: a million cases take about a second.
    """
    query = (
        Case.objects.filter(project=project, split=split)
        .order_by("id")
        .values_list("id", "content_hash", "given_label_id")
        .query
    )
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    given = np.fromiter(
        (-1 if r[2] is None else r[2] for r in rows), dtype=np.int64, count=len(rows)
    )
    return ids, [r[1] for r in rows], given


def _lookup(ids: np.ndarray, mapping: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(whether each id is a key of `mapping`, its value or -1), vectorized."""
    if not mapping:
        return np.zeros(ids.shape[0], dtype=bool), np.full(ids.shape[0], -1, dtype=np.int64)
    keys = np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping))
    values = np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping))
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    pos = np.minimum(np.searchsorted(keys, ids), keys.size - 1)
    found = keys[pos] == ids
    return found, np.where(found, values[pos], -1)


def _subset(
    ids: np.ndarray,
    hashes: list[str],
    keep: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    from_analyst: np.ndarray,
    given: np.ndarray | None = None,
) -> LabelSet:
    index = np.flatnonzero(keep)
    return LabelSet(
        case_ids=ids[index],
        hashes=[hashes[i] for i in index.tolist()],
        labels=labels[index],
        weights=weights[index].astype(np.float64),
        from_analyst=from_analyst[index],
        given=None if given is None else given[index],
    )


def excluded_case_ids(*, project: Project) -> np.ndarray:
    """Cases whose resolution is marked `excluded`: kept out of training and detection whole."""
    ids = ResolvedLabel.objects.filter(case__project=project, excluded=True).values_list(
        "case_id", flat=True
    )
    return np.fromiter(ids, dtype=np.int64)


def detection_set(*, project: Project) -> LabelSet:
    """Pool cases with a label to check: the analysts' label overrides the given one."""
    analysts = analyst_labels(project=project, split=Split.POOL)
    ids, hashes, given = split_cases(project, Split.POOL)
    from_analyst, analyst_label = _lookup(ids, analysts)
    labels = np.where(from_analyst, analyst_label, given)
    weights = np.ones(ids.shape[0], dtype=np.float64)
    keep = (labels >= 0) & ~np.isin(ids, excluded_case_ids(project=project))
    return _subset(ids, hashes, keep, labels, weights, from_analyst, given)


def evaluation_check_set(*, project: Project) -> LabelSet:
    """Evaluation-split cases with a given label to check, that label (analysts' labels of these
    cases are evaluation labels: detection never reads them)."""
    ids, hashes, given = split_cases(project, Split.EVAL)
    weights = np.ones(ids.shape[0], dtype=np.float64)
    from_analyst = np.zeros(ids.shape[0], dtype=bool)
    keep = (given >= 0) & ~np.isin(ids, excluded_case_ids(project=project))
    return _subset(ids, hashes, keep, given, weights, from_analyst, given)


def decided_case_ids(*, project: Project) -> np.ndarray:
    """Cases a reviewer or adjudicator decided (sorted): never flagged or queued for review again."""
    ids = (
        ResolvedLabel.objects.filter(case__project=project, source__in=AUTHORITATIVE_SOURCES)
        .order_by("case_id")
        .values_list("case_id", flat=True)
    )
    return np.fromiter(ids, dtype=np.int64)


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
    ids, hashes, given = split_cases(project, Split.POOL)
    from_analyst, analyst_label = _lookup(ids, analysts)
    is_doubtful = np.isin(ids, np.fromiter(doubtful, dtype=np.int64, count=len(doubtful)))
    is_excluded = np.isin(ids, excluded_case_ids(project=project))
    use_given = ~from_analyst & (weight > 0) & (given >= 0) & ~is_doubtful
    labels = np.where(from_analyst, analyst_label, given)
    weights = np.where(from_analyst, 1.0, weight)
    keep = (from_analyst | use_given) & ~is_excluded
    return _subset(ids, hashes, keep, labels, weights, from_analyst)


CHUNK = 5000  # case ids per IN list

# Resolutions that are the evaluation draws' own labels; a decision above them is not, unless
# it was made without a model's view (`adjudicated_without_model`).
EVALUATION_SOURCES = (ResolutionSource.ANNOTATION, ResolutionSource.CONSENSUS)


def adjudicated_without_model(*, adjudicated: dict[int, int]) -> list[tuple[int, str, int]]:
    """(case id, content hash, label id) of the cases in `adjudicated` (case id -> the label an
    `adjudicated` resolution set) whose deciding annotation (the case's latest current
    adjudication, as the resolution takes it) was made on an adjudication item that carried no
    model suggestion, on the case itself (not a decision extended from a near-duplicate), with
    the label the case resolved to."""
    latest: dict[int, tuple[Any, ...]] = {}
    ids = list(adjudicated)
    for start in range(0, len(ids), CHUNK):
        for row in (
            Annotation.objects.filter(
                case_id__in=ids[start : start + CHUNK],
                source=AnnotationSource.ADJUDICATION,
                superseded_at__isnull=True,
                skipped=False,
                content_hash=F("case__content_hash"),
            )
            .order_by()
            .values_list(
                "case_id",
                "id",
                "label_id",
                "group_decision_id",
                "queue_item__kind",
                "queue_item__suggestion_id",
                "content_hash",
            )
        ):
            if row[0] not in latest or row[1] > latest[row[0]][1]:
                latest[row[0]] = row
    return [
        (case_id, content_hash, label_id)
        for case_id, _, label_id, group, kind, suggestion, content_hash in latest.values()
        if group is None
        and kind == QueueKind.ADJUDICATION
        and suggestion is None
        and label_id == adjudicated[case_id]
    ]


def _tied(counter: Counter[int]) -> bool:
    ranked = counter.most_common(2)
    return len(ranked) == 2 and ranked[0][1] == ranked[1][1]


def evaluation_set(*, project: Project) -> LabelSet:
    """The evaluation split's labels from evaluation draws: analysts' resolved labels (their
    majority, or Dawid-Skene's consensus), but none while the analysts' current labels tie (a
    tie keeps the earlier label as the case's resolution: one analyst's word); a reviewer's
    decision where it was made on an adjudication item that showed no model suggestion (the
    tie of an evaluation case's analysts, `adjudication.tie_adjudication_request`); for any
    other case a reviewer or adjudicator decided, the majority of its current queue labels
    instead (a decision made beside a model's suggestion would favour that model: not an
    evaluation label; ties dropped). Excluded cases are left out."""
    # One read of the split's resolutions other than given labels: the cases analysts labelled
    # (a million-case project's split holds ~100k given-label rows, its labels a few thousand).
    rows = list(
        ResolvedLabel.objects.filter(case__project=project, case__split=Split.EVAL, excluded=False)
        .exclude(source=ResolutionSource.GIVEN)
        .values_list("case_id", "case__content_hash", "label_id", "source")
    )
    by_analysts = [
        (case_id, content_hash, label_id)
        for case_id, content_hash, label_id, source in rows
        if source in EVALUATION_SOURCES and label_id is not None
    ]
    settled = adjudicated_without_model(
        adjudicated={
            case_id: label_id
            for case_id, _, label_id, source in rows
            if source == ResolutionSource.ADJUDICATED and label_id is not None
        }
    )
    settled_ids = {case_id for case_id, _, _ in settled}
    decided_ids = {
        case_id for case_id, _, _, source in rows if source not in EVALUATION_SOURCES
    } - settled_ids
    votes: dict[int, Counter[int]] = defaultdict(Counter)
    hashes: dict[int, str] = {}
    ids = [case_id for case_id, *_ in rows]
    for start in range(0, len(ids), CHUNK):
        for case_id, label_id, labelled_hash, current_hash in (
            Annotation.objects.filter(
                case_id__in=ids[start : start + CHUNK],
                source=AnnotationSource.QUEUE,
                superseded_at__isnull=True,
                skipped=False,
                label__isnull=False,
            )
            # Gold items are pool-split only; should one ever name an eval case, its answers
            # are still no evaluation draw's.
            .exclude(queue_item__kind=QueueKind.GOLD)
            .order_by()
            .values_list("case_id", "label_id", "content_hash", "case__content_hash")
        ):
            if labelled_hash == current_hash:
                votes[case_id][label_id] += 1
                hashes[case_id] = current_hash
    # Analysts' resolutions count unless their labels tie (waiting for the reviewer).
    chosen = [row for row in by_analysts if not _tied(votes.get(row[0], Counter()))]
    chosen += settled
    for case_id in decided_ids & set(votes):
        counter = votes[case_id]
        if not _tied(counter):
            chosen.append((case_id, hashes[case_id], counter.most_common(1)[0][0]))
    labels = _label_set([(cid, h, label, 1.0, True) for cid, h, label in chosen])
    labels.weights = evaluation_weights(project=project, case_ids=labels.case_ids)
    return labels


def classes_evaluation_cannot_show(
    *, project: Project, classes: list[LabelClass], per_class: int
) -> frozenset[str]:
    """Ids (as strings) of `classes` fewer than `per_class` of whose evaluation-split cases
    carry that given label: the split will most likely never yield `per_class` evaluation labels
    of them, so promotion does not wait for those (else it would stay in warm-up forever). With
    no given labels at all nothing is known, and every class is waived."""
    counts = dict(
        Case.objects.filter(project=project, split=Split.EVAL, given_label__isnull=False)
        .order_by()
        .values("given_label_id")
        .annotate(n=Count("id"))
        .values_list("given_label_id", "n")
    )
    return frozenset(str(c.pk) for c in classes if counts.get(c.pk, 0) < per_class)


def evaluation_drawn() -> Exists:
    """For an `EvaluationDesign` row: its case has an evaluation item (any but cancelled)."""
    return Exists(
        QueueItem.objects.filter(case=OuterRef("case"), kind=QueueKind.EVALUATION).exclude(
            status=QueueStatus.CANCELLED
        )
    )


def evaluation_cases_to_draw(*, project: Project, count: int) -> list[int]:
    """The next `count` evaluation cases in draw order: undrawn design rows by ascending key."""
    if count <= 0:
        return []
    return list(
        EvaluationDesign.objects.filter(project=project)
        .exclude(evaluation_drawn())
        .order_by("key", "case_id")
        .values_list("case_id", flat=True)[:count]
    )


def draw_threshold(*, project: Project) -> float:
    """The key of the next case still to draw (infinite once every case is drawn)."""
    key = (
        EvaluationDesign.objects.filter(project=project)
        .exclude(evaluation_drawn())
        .order_by("key")
        .values_list("key", flat=True)
        .first()
    )
    return float("inf") if key is None else float(key)


def evaluation_weights(*, project: Project, case_ids: np.ndarray) -> np.ndarray:
    """Inverse inclusion probabilities of labelled evaluation cases (aligned with `case_ids`).

    A case outside the design (a project upgraded mid-way, a label given before its row was
    made) counts as drawn uniformly: the design's mean size.
    """
    case_ids = np.asarray(case_ids, dtype=np.int64)
    if case_ids.size == 0:
        return np.zeros(0, dtype=float)
    sizes = dict(
        EvaluationDesign.objects.filter(project=project, case_id__in=case_ids.tolist()).values_list(
            "case_id", "size"
        )
    )
    if not sizes:
        return np.ones(case_ids.size, dtype=float)
    fallback = float(np.mean(list(sizes.values())))
    per_case = np.array([sizes.get(int(c), fallback) for c in case_ids.tolist()], dtype=float)
    return inverse_inclusion_weights(per_case, draw_threshold(project=project))


def _item_case_ids(project: Project, statuses: list[str]) -> np.ndarray:
    ids = QueueItem.objects.filter(project=project, status__in=statuses).values_list(
        "case_id", flat=True
    )
    return np.unique(np.fromiter(ids.iterator(chunk_size=50_000), dtype=np.int64))


@dataclass(frozen=True)
class ProbeState:
    """The pool probe now: every pool case's id (sorted) and key, which are settled, and the
    threshold t below which every case is settled."""

    case_ids: np.ndarray
    hashes: list[str]
    keys: np.ndarray
    labelled: np.ndarray
    settled: np.ndarray
    threshold: float


def probe_state(*, project: Project, analysts: dict[int, int] | None = None) -> ProbeState:
    """Where the pool probe stands (`active_learning.ml.pool_probe`).

    Settled: an analyst's label, a reviewer's exclusion, or given up (a done item, no label, no
    open or claimed item: the analysts skipped it). `analysts`: the pool's analyst labels when
    the caller has read them.
    """
    if analysts is None:
        analysts = analyst_labels(project=project, split=Split.POOL)
    ids, hashes, _ = split_cases(project, Split.POOL)
    keys = probe_keys(ids, project.split_seed)
    labelled, _ = _lookup(ids, analysts)
    live = _item_case_ids(project, [QueueStatus.OPEN, QueueStatus.CLAIMED])
    done = _item_case_ids(project, [QueueStatus.DONE])
    given_up = np.isin(ids, done) & ~np.isin(ids, live) & ~labelled
    settled = labelled | given_up | np.isin(ids, excluded_case_ids(project=project))
    return ProbeState(ids, hashes, keys, labelled, settled, probe_threshold(keys, settled))


def probe_set(*, project: Project) -> LabelSet:
    """The pool probe's labels: the analysts' pool labels of cases with a key below the
    threshold, a simple random sample of the pool (each weighing 1 / t; excluded cases never)."""
    analysts = analyst_labels(project=project, split=Split.POOL)
    state = probe_state(project=project, analysts=analysts)
    keep = probe_sample(state.keys, state.labelled, state.threshold)
    ids = state.case_ids[keep]
    labels = np.array([analysts[int(i)] for i in ids.tolist()], dtype=np.int64)
    return LabelSet(
        case_ids=ids,
        hashes=[state.hashes[i] for i in np.flatnonzero(keep).tolist()],
        labels=labels,
        weights=probe_weights(ids.size, state.threshold),
        from_analyst=np.ones(ids.size, dtype=bool),
    )


def probe_cases_to_draw(*, project: Project, candidates: np.ndarray, count: int) -> np.ndarray:
    """The next `count` probe cases among `candidates` (pool case ids free to queue): the lowest
    keys, in ascending order."""
    candidates = np.asarray(candidates, dtype=np.int64)
    if count <= 0 or candidates.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(probe_keys(candidates, project.split_seed), kind="stable")
    return candidates[order[:count]]


def champion_of(*, project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, status=ModelStatus.CHAMPION).first()
