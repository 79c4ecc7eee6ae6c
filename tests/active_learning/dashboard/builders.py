"""A project with evaluation labels and a history of model versions, for dashboard tests.

Metrics are the real `evaluate()`'s JSON on generated probabilities; predictions are stored for
the evaluation cases and the stop set as the scoring step stores them (with top-k).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
from django.utils import timezone

from active_learning.dashboard.model_panel import stop_set_mask
from active_learning.ml.metrics import evaluate
from active_learning.ml.promotion import REASON_NO_CHAMPION
from active_learning.models import ModelStatus, ModelVersion, Prediction
from labeling.models import Annotation, Case, LabelClass, Project, ResolvedLabel, Split, Tier
from tests.factories import LabelClassFactory, ProjectFactory

TIERS = {
    "Retail": Tier.SUPPORTABLE,
    "Crypto exchange": Tier.RESTRICTED,
    "Firearms": Tier.PROHIBITED,
}


def project_with_classes(**kwargs) -> tuple[Project, list[LabelClass]]:
    project = ProjectFactory(target_precision=0.9, **kwargs)
    classes = [LabelClassFactory(project=project, name=n, tier=t) for n, t in TIERS.items()]
    return project, classes


def eval_cases(
    project: Project, classes: list[LabelClass], n: int = 90
) -> tuple[list[Case], np.ndarray]:
    """`n` evaluation cases with analysts' labels (balanced over the classes)."""
    cases = Case.objects.bulk_create(
        Case(project=project, external_id=f"E{i:05d}", text=f"eval {i}", content_hash=f"e{i}",
             split=Split.EVAL)
        for i in range(n)
    )  # fmt: skip
    truth = np.array([classes[i % len(classes)].pk for i in range(n)])
    ResolvedLabel.objects.bulk_create(
        ResolvedLabel(case=c, label_id=int(t), source="annotation")
        for c, t in zip(cases, truth, strict=True)
    )
    return cases, truth


def stop_cases(project: Project, n_pool: int = 1500) -> list[Case]:
    """Pool cases; returns those in the stop set (about 1%)."""
    cases = Case.objects.bulk_create(
        Case(project=project, external_id=f"P{i:05d}", text=f"pool {i}", content_hash=f"p{i}")
        for i in range(n_pool)
    )
    mask = stop_set_mask(project=project, case_ids=np.array([c.pk for c in cases]))
    return [c for c, m in zip(cases, mask.tolist(), strict=True) if m]


def proba_for(truth: np.ndarray, classes: list[LabelClass], skill: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = [c.pk for c in classes]
    proba = rng.dirichlet(np.ones(len(ids)), size=truth.size)
    hit = rng.random(truth.size) < skill
    for i, t in enumerate(truth.tolist()):
        if hit[i]:
            proba[i] = 0.1 / (len(ids) - 1)
            proba[i, ids.index(t)] = 0.9
    return proba


def version(
    project: Project,
    classes: list[LabelClass],
    *,
    number: int,
    truth: np.ndarray,
    eval_cases_: list[Case],
    stop: list[Case],
    skill: float,
    status: str,
    labels: int,
    promoted: bool,
    flips: int = 0,
) -> ModelVersion:
    """A version measured on the evaluation labels, with predictions on eval and stop cases
    (the stop set's first `flips` cases get another class than the base prediction)."""
    ids = [c.pk for c in classes]
    proba = proba_for(truth, classes, skill, seed=number)
    report = evaluate(
        truth, proba, classes=ids, tiers={c.pk: c.tier for c in classes},
        target_precision=project.target_precision, n_bootstrap=50, random_state=0,
    )  # fmt: skip
    when = timezone.now() - timedelta(days=30 - number)
    f1 = report.macro_f1 or 0.0
    if number == 1:
        reason = REASON_NO_CHAMPION
    elif promoted:
        reason = (
            f"promoted over v{number - 2 if number > 2 else 1}: macro-F1 {f1:.4f} higher in 84% "
            f"of paired resamples; judged on {report.n_samples} evaluation labels"
        )
    else:
        reason = (
            f"kept champion v{number - 1}: neither macro-F1 ({f1:.4f}) nor prohibited-tier "
            f"recall is surely better; judged on {report.n_samples} evaluation labels"
        )
    v = ModelVersion.objects.create(
        project=project, number=number, status=status, metrics=report.to_json(),
        n_train=labels * 3, n_eval=report.n_samples, params={"n_from_analysts": labels},
        decision={"promote": promoted, "reason": reason}, decision_reason=reason,
        trained_at=when, promoted_at=when if promoted else None,
    )  # fmt: skip
    rows = []
    # Evaluation cases can be in the stop set too (it is drawn from every case): keep their
    # class fixed there, so only the stop set's pool cases (and `flips`) change between versions.
    in_stop = stop_set_mask(project=project, case_ids=np.array([c.pk for c in eval_cases_]))
    for case, row, fixed in zip(eval_cases_, proba, in_stop.tolist(), strict=True):
        top = 0 if fixed else int(np.argmax(row))
        rows.append(Prediction(case=case, model_version=v, predicted_label_id=ids[top],
                               confidence=float(row[top]), top_k=[[ids[top], float(row[top])]]))  # fmt: skip
    for i, case in enumerate(stop):
        label = ids[(i + (1 if i < flips else 0)) % len(ids)]
        rows.append(Prediction(case=case, model_version=v, predicted_label_id=label,
                               confidence=0.8, top_k=[[label, 0.8]]))  # fmt: skip
    Prediction.objects.bulk_create(rows)
    return v


def history(project, classes, *, versions: int, snapshot: bool = True) -> list[ModelVersion]:
    """`versions` versions, every other one promoted; the last promoted one is the champion.
    With `snapshot`, the dashboard's snapshot is stored as the retrain chain's last step leaves
    it."""
    cases, truth = eval_cases(project, classes)
    stop = stop_cases(project)
    made = []
    for n in range(1, versions + 1):
        promoted = n == 1 or n % 2 == 1
        made.append(
            version(
                project, classes, number=n, truth=truth, eval_cases_=cases, stop=stop,
                skill=min(0.95, 0.5 + 0.05 * n), status=ModelStatus.RETIRED if promoted else ModelStatus.READY,
                labels=100 * n, promoted=promoted, flips=1 if n < 3 else 0,
            )
        )  # fmt: skip
    champion = [v for v in made if v.promoted_at is not None][-1]
    ModelVersion.objects.filter(pk=champion.pk).update(status=ModelStatus.CHAMPION)
    champion.refresh_from_db()
    if snapshot:
        from active_learning.services.dashboard import dashboard_snapshot_refresh

        dashboard_snapshot_refresh(project=project, force=True)
    return made


def answer(
    case: Case, user, *, skipped: bool = False, duration_ms: int = 4000, label=None
) -> Annotation:
    return Annotation.objects.create(
        case=case, annotator=user, label=label, skipped=skipped, duration_ms=duration_ms,
        submission_id=uuid.uuid4(), content_hash=case.content_hash,
    )  # fmt: skip
