"""The dashboard's model panel: champion vs last challenger, versions, the figures' data.

Reads stored rows only (no model is loaded, nothing imports scikit-learn). The figures' data
(learning curve, per-class operating points, reliability, confusions) are plain lists of dicts;
the page renders them as tables and `plots` draws the same lists, so a plot and its table never
disagree. What needs stored predictions (the champion's reliability and confusions on the
evaluation labels, the recent champions' stop-set predictions) is computed in the background and
stored in the `DashboardSnapshot`; the background step caches each version's stop-set predictions
on disk (`cache`: they never change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from active_learning import presentation
from active_learning.dashboard import cache
from active_learning.ml.progress import (
    StoppingSignal,
    VersionFacts,
    reliability_table,
    stopping_signal,
    top_confusions,
)
from active_learning.models import ModelStatus, ModelVersion, Prediction
from active_learning.selectors import evaluation_set
from labeling.models import LabelClass, Project
from workbench.core.hashing import unit_hashes

# As `services.scoring` draws the stop set (that module loads the ML stack; a test keeps the two
# equal).
STOP_SET_FRACTION = 0.01
SHOWN_STATUSES = (ModelStatus.READY, ModelStatus.CHAMPION, ModelStatus.RETIRED)
CONFUSIONS_SHOWN = 10


@dataclass(frozen=True)
class VersionRow:
    """One version in the history table (and one point of the learning curve)."""

    pk: int
    number: int
    status: str
    trained_at: Any
    promoted_at: Any
    analyst_labels: int
    train_rows: int
    headline: presentation.Headline
    decision: str


@dataclass
class ModelPanel:
    champion: VersionRow | None = None
    challenger: VersionRow | None = None
    challenger_is_newer: bool = False
    last_decision: str = ""
    versions: list[VersionRow] = field(default_factory=list)  # newest first
    learning_curve: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    class_points: list[dict[str, Any]] = field(default_factory=list)
    operating_points: list[presentation.PointRow] = field(default_factory=list)
    target_precision: float | None = None
    stopping: StoppingSignal | None = None


def class_map(*, project: Project) -> dict[int, tuple[str, str]]:
    return {
        pk: (name, str(tier))
        for pk, name, tier in LabelClass.objects.filter(project=project).values_list(
            "pk", "name", "tier"
        )
    }


def _row(version: ModelVersion) -> VersionRow:
    params = version.params or {}
    analysts = params.get("n_from_analysts")
    return VersionRow(
        pk=version.pk,
        number=version.number,
        status=str(version.status),
        trained_at=version.trained_at or version.created_at,
        promoted_at=version.promoted_at,
        analyst_labels=int(analysts) if isinstance(analysts, int) else int(version.n_train),
        train_rows=int(version.n_train),
        headline=presentation.headline(version.metrics),
        decision=presentation.decision_sentence(
            version.number, version.decision, version.decision_reason
        ),
    )


def model_panel(*, project: Project, classes: dict[int, tuple[str, str]]) -> ModelPanel:
    """Everything the model panel shows, from one query over the project's versions."""
    versions = list(
        ModelVersion.objects.filter(project=project, status__in=SHOWN_STATUSES)
        .order_by("-number")
        .only(
            "pk", "number", "status", "trained_at", "created_at", "promoted_at", "params",
            "n_train", "metrics", "decision", "decision_reason",
        )
    )  # fmt: skip
    panel = ModelPanel(versions=[_row(v) for v in versions])
    champion = next((v for v in versions if v.status == ModelStatus.CHAMPION), None)
    if champion is not None:
        panel.champion = _row(champion)
        panel.operating_points = presentation.point_rows(champion.metrics or {}, classes)
        panel.class_points = [
            {
                "name": p.name,
                "tier": p.tier,
                "precision": p.precision,
                "precision_ci": p.precision_ci,
                "recall": p.recall,
                "recall_ci": p.recall_ci,
                "threshold": p.threshold,
                "positives": p.n_positives,
                "enough": p.enough_evidence,
                "reason": p.reason,
            }
            for p in panel.operating_points
            if p.kind == "class"
        ]
        panel.target_precision = next(
            (p.target for p in panel.operating_points if p.target is not None), None
        )
    other = next((v for v in versions if v.status != ModelStatus.CHAMPION), None)
    if other is not None:
        panel.challenger = _row(other)
        panel.challenger_is_newer = champion is None or other.number > champion.number
    decided = next((row for row in panel.versions if row.decision), None)
    panel.last_decision = decided.decision if decided else ""
    panel.learning_curve = [
        {
            "number": row.number,
            "labels": row.analyst_labels,
            "status": row.status,
            "macro_f1": row.headline.macro_f1,
            "macro_f1_ci": row.headline.macro_f1_ci,
            "recall": row.headline.prohibited_recall,
            "recall_ci": row.headline.prohibited_recall_ci,
            "n_eval": row.headline.n_eval,
        }
        for row in reversed(panel.versions)
        if row.headline.n_eval > 0
    ]
    return panel


def stop_set_mask(*, project: Project, case_ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(case_ids, dtype=np.int64).tolist()
    return unit_hashes(project.split_seed, "stop-set", values=ids) < STOP_SET_FRACTION


def champions_in_order(*, project: Project) -> list[ModelVersion]:
    """Every version that was ever champion, in promotion order (a rolled-back-to version
    counts at its latest promotion)."""
    return list(
        ModelVersion.objects.filter(project=project, promoted_at__isnull=False)
        .order_by("promoted_at")
        .only("pk", "number", "params", "n_train", "metrics", "promoted_at")
    )


def stop_set_predictions(*, project: Project, versions: list[ModelVersion]) -> dict[int, Any]:
    """Each version's predicted class on the stop set cases all of them scored, aligned (cached
    per version: a version's stored predictions never change)."""
    per_version: dict[int, dict[int, int]] = {}
    for version in versions:
        key = f"stop-set-v{version.pk}"
        stored = cache.data_get(project, key)
        if stored is None:
            rows = list(
                Prediction.objects.filter(model_version=version, top_k__isnull=False)
                .order_by()
                .values_list("case_id", "predicted_label_id")
            )
            ids = np.array([c for c, _ in rows], dtype=np.int64)
            keep = stop_set_mask(project=project, case_ids=ids) if ids.size else ids.astype(bool)
            stored = {str(c): (p or 0) for (c, p), k in zip(rows, keep.tolist(), strict=True) if k}
            cache.data_put(project, key, stored)
        per_version[version.pk] = {int(c): int(p) for c, p in stored.items()}
    if not per_version:
        return {}
    common = sorted(set.intersection(*(set(v) for v in per_version.values())))
    return {
        pk: np.array([preds[c] for c in common], dtype=np.int64) if common else None
        for pk, preds in per_version.items()
    }


RECENT_CHAMPIONS = 4  # the table shows the last three changes; the rule needs three


def stop_set_patterns(*, project: Project) -> dict[str, Any]:
    """The recent champions' stop-set predictions, compressed for the snapshot: each distinct
    row of predicted classes (one per version, oldest first) with how many cases have it.

    What the stopping signal measures (the share of cases whose class changed) does not depend
    on which case is which, so these few rows stand for the ~1% of cases exactly.
    """
    recent = champions_in_order(project=project)[-RECENT_CHAMPIONS:]
    aligned = stop_set_predictions(project=project, versions=recent)
    pks = [v.pk for v in recent]
    if not pks or any(aligned.get(pk) is None for pk in pks):
        return {"versions": pks, "patterns": []}
    rows, counts = np.unique(np.vstack([aligned[pk] for pk in pks]).T, axis=0, return_counts=True)
    return {
        "versions": pks,
        "patterns": [[*map(int, r), int(n)] for r, n in zip(rows, counts, strict=True)],
    }


def _expand(patterns: dict[str, Any] | None) -> dict[int, Any]:
    """Each version's aligned predictions back from `stop_set_patterns`' rows."""
    if not patterns or not patterns.get("patterns"):
        return {}
    table = np.array(patterns["patterns"], dtype=np.int64)
    counts = table[:, -1]
    return {int(pk): np.repeat(table[:, i], counts) for i, pk in enumerate(patterns["versions"])}


def stopping(*, project: Project, stop_set: dict[str, Any] | None) -> StoppingSignal:
    """The stopping signal over the champions' history (last three carry the criterion), the
    stop-set predictions from the stored snapshot (`stop_set_patterns`); a champion the snapshot
    predates counts as not scored on the stop set until the next snapshot."""
    champions = champions_in_order(project=project)
    predictions = _expand(stop_set)
    facts = []
    for version in champions:
        head = presentation.headline(version.metrics)
        analysts = (version.params or {}).get("n_from_analysts")
        facts.append(
            VersionFacts(
                number=version.number,
                labels=int(analysts) if isinstance(analysts, int) else int(version.n_train),
                macro_f1=head.macro_f1,
                macro_f1_ci=head.macro_f1_ci,
                stop_predictions=predictions.get(version.pk),
            )
        )
    return stopping_signal(facts)


def champion_evaluation_compute(
    *, project: Project, champion_pk: int, classes: dict[int, tuple[str, str]]
) -> dict[str, Any]:
    """Reliability bins, ECE and top confusions of the champion on the evaluation labels, from
    its stored predictions (~0.3 s at a million cases: the background snapshot's work,
    `services.dashboard`, never a request's)."""
    labels = evaluation_set(project=project)
    truth = dict(zip(labels.case_ids.tolist(), labels.labels.tolist(), strict=True))
    weight = dict(zip(labels.case_ids.tolist(), labels.weights.tolist(), strict=True))
    rows = list(
        Prediction.objects.filter(model_version_id=champion_pk, case_id__in=list(truth))
        .order_by()
        .values_list("case_id", "predicted_label_id", "confidence")
    )
    y = np.array([truth[c] for c, _, _ in rows], dtype=np.int64)
    pred = np.array([p or 0 for _, p, _ in rows], dtype=np.int64)
    conf = np.array([c for _, _, c in rows], dtype=float)
    w = np.array([weight[c] for c, _, _ in rows], dtype=float)
    bins, ece = reliability_table(conf, pred == y, sample_weight=w)
    confusions = top_confusions(y, pred, sample_weight=w, top=CONFUSIONS_SHOWN)

    def name(pk: int) -> str:
        return presentation.class_names(classes, pk)[0]

    return {
        "n": len(rows),
        "ece": ece,
        "bins": [
            {
                "low": b.low,
                "high": b.high,
                "count": b.count,
                "confidence": b.mean_confidence,
                "accuracy": b.accuracy,
            }
            for b in bins
        ],
        "confusions": [
            {"truth": name(t), "predicted": name(p), "cases": n, "share": s}
            for t, p, n, s in confusions
        ],
    }
