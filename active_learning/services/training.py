"""Training the deciding model: pool labels only, calibrated, evaluated on the evaluation split.

Each run makes a `ModelVersion` with its label snapshot (a hash of the (case, label, weight)
rows, and the case ids in a file beside the model), its `EvaluationReport` on the analysts'
evaluation labels (measured once; promotion reuses it), timings, and a skops file written
atomically. A data directory that runs out of space fails the version and the job with a message
naming the file, removes the version's files, and leaves the champion as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from active_learning.ml.classifiers import make_classifier
from active_learning.ml.metrics import EvaluationReport, evaluate
from active_learning.ml.paired import PairedF1, paired_log_loss, paired_macro_f1
from active_learning.ml.persistence import load_model, save_model
from active_learning.models import ModelStatus, ModelVersion
from active_learning.selectors import LabelSet, evaluation_set, project_classes, training_set
from active_learning.services.embeddings import embedded_only, matrix_load, model_name_current
from active_learning.services.faults import fault_point
from labeling.models import LabelClass, Project, Tier
from workbench.errors import ApplicationError

ESTIMATOR = "logreg"
CALIBRATION = "temperature"
# Rare classes weighed up, fully on small training sets (see AUTO_BALANCE_POWERS).
CLASS_WEIGHT = "auto"
SNAPSHOT_IDS_IN_DB = 100_000
# The deciding model fits on at most this many labels (all analysts' labels first): a tuned,
# calibrated fit is ~20 logistic regressions, ~2 min at 50,000 labels on one thread.
TRAIN_MAX_ROWS = 50_000  # above this, the ids live only in the snapshot file
# `params` key: the hash of the evaluation labels `metrics` was measured on.
EVAL_SNAPSHOT_KEY = "eval_snapshot_hash"
TRAINING_ROWS_KEY = "training_rows_file"  # `params` key: the fitted rows (ids, labels, weights)
ERR_NOT_EMBEDDED = "{n} cases have no embedding yet: run embed_cases first."
ERR_DISK_FULL = (
    "no space left on device while writing {path}: free space in the data directory "
    "(WORKBENCH_DATA_DIR) and retrain; v{number} was not saved and the champion is unchanged"
)


def models_dir(project: Project) -> Path:
    return Path(settings.WORKBENCH_DATA_DIR) / "models" / f"project-{project.pk}"


def features_for(hashes: list[str]) -> np.ndarray:
    """Embedding rows of `hashes` from the matrix file, shape (len(hashes), dim)."""
    matrix = matrix_load()
    rows = matrix.rows_for(hashes)
    if (rows < 0).any():
        raise RuntimeError(ERR_NOT_EMBEDDED.format(n=int((rows < 0).sum())))
    if rows.size == 0:
        return np.zeros((0, matrix.vectors.shape[1]), dtype=np.float32)
    return np.asarray(matrix.vectors[rows], dtype=np.float32)


def snapshot_hash(labels: LabelSet) -> str:
    digest = hashlib.sha256()
    for case_id, label, weight in zip(labels.case_ids, labels.labels, labels.weights, strict=True):
        digest.update(f"{case_id}:{label}:{weight:.6f}\n".encode())
    return digest.hexdigest()


def training_sample(labels: LabelSet, *, seed: int) -> LabelSet:
    """At most TRAIN_MAX_ROWS rows: every analyst's label, then a seeded sample of given ones.

    The snapshot (hash, case ids, n_train) describes the rows actually fitted.
    """
    if len(labels) <= TRAIN_MAX_ROWS:
        return labels
    analysts = np.flatnonzero(labels.from_analyst)
    given = np.flatnonzero(~labels.from_analyst)
    room = min(given.size, max(0, TRAIN_MAX_ROWS - analysts.size))
    picked = np.random.default_rng(seed).choice(given, room, replace=False)
    keep = np.sort(np.concatenate([analysts, picked]))
    return LabelSet(
        case_ids=labels.case_ids[keep],
        hashes=[labels.hashes[i] for i in keep.tolist()],
        labels=labels.labels[keep],
        weights=labels.weights[keep],
        from_analyst=labels.from_analyst[keep],
    )


def tiers_of(classes: list[LabelClass]) -> dict[int, str]:
    return {c.pk: c.tier for c in classes}


def proba_aligned(model: Any, X: np.ndarray, class_ids: list[int]) -> np.ndarray:
    """`model`'s probabilities with columns in `class_ids` order; zero for classes it never knew.

    A model keeps the class list it was trained with; classes added since (an import into an
    open project, the admin) get no probability from it rather than breaking the comparison.
    """
    proba = model.predict_proba(X)
    known = {int(c): i for i, c in enumerate(model.classes_)}
    out = np.zeros((proba.shape[0], len(class_ids)), dtype=np.float64)
    for j, class_id in enumerate(class_ids):
        if class_id in known:
            out[:, j] = proba[:, known[class_id]]
    return out


def evaluate_model(
    *, model: Any, project: Project, classes: list[LabelClass], labels: LabelSet | None = None
) -> EvaluationReport:
    """Report of `model` on the evaluation labels (today's unless given; empty when none),
    each label weighted by its `weights` (the evaluation design's inverse inclusion
    probabilities)."""
    labels = embedded_only(evaluation_set(project=project)) if labels is None else labels
    if len(labels) == 0:
        return EvaluationReport.empty()
    proba = proba_of(model, labels, classes)
    return report_of(
        project=project, classes=classes, y=labels.labels, proba=proba, weights=labels.weights
    )


def proba_of(model: Any, labels: LabelSet, classes: list[LabelClass]) -> np.ndarray:
    """`model`'s probabilities on `labels`' cases, columns in `classes` order."""
    return proba_aligned(model, features_for(labels.hashes), [c.pk for c in classes])


def report_of(
    *,
    project: Project,
    classes: list[LabelClass],
    y: np.ndarray,
    proba: np.ndarray,
    weights: np.ndarray | None,
) -> EvaluationReport:
    """The evaluation report of probabilities `proba` (columns: `classes`) against labels `y`."""
    return evaluate(
        y,
        proba,
        classes=[c.pk for c in classes],
        tiers=tiers_of(classes),
        target_precision=project.target_precision,
        n_bootstrap=200,
        random_state=0,
        sample_weight=weights,
    )


def prohibited_scores(proba: np.ndarray, classes: list[LabelClass]) -> np.ndarray:
    """Each row's probability mass on the prohibited tier (the guarded tier's score)."""
    mask = np.array([c.tier == Tier.PROHIBITED for c in classes], dtype=bool)
    return np.asarray(proba[:, mask].sum(axis=1)) if mask.any() else np.zeros(proba.shape[0])


def paired_f1_of(
    classes: list[LabelClass],
    y: np.ndarray,
    old: np.ndarray,
    new: np.ndarray,
    weights: np.ndarray | None = None,
) -> PairedF1:
    """Both models' macro-F1 and per-class log loss on labels `y` from their probabilities
    (columns: `classes`), paired by resampling, each label weighted by `weights`."""
    ids = np.array([c.pk for c in classes])
    f1 = paired_macro_f1(
        y,
        ids[old.argmax(axis=1)],
        ids[new.argmax(axis=1)],
        classes=ids.tolist(),
        sample_weight=weights,
    )
    loss = paired_log_loss(y, old, new, classes=ids.tolist(), sample_weight=weights)
    return dataclasses.replace(f1, loss=loss)


def training_rows_save(folder: Path, number: int, labels: LabelSet) -> Path:
    """The rows a version was fitted on (ids, labels, weights), for refitting its recipe later
    (the warm-up comparison refits the champion without the cases it is judged on)."""
    path = folder / f"v{number}.training.npz"
    with open(path, "wb") as out:
        np.savez(out, case_ids=labels.case_ids, labels=labels.labels, weights=labels.weights)
    return path


def load_version(version: ModelVersion) -> Any:
    return load_model(version.artifact_path)


def train_model(*, project: Project) -> ModelVersion | None:
    """Fit, calibrate and evaluate a challenger; None when there is nothing to train on."""
    labels = embedded_only(training_set(project=project))
    if np.unique(labels.labels).size < 2:
        return None
    n_labelled = len(labels)
    labels = training_sample(labels, seed=abs(int(project.split_seed)))
    classes = project_classes(project=project)
    started = time.perf_counter()
    number = (ModelVersion.objects.filter(project=project).aggregate(m=Max("number"))["m"] or 0) + 1
    version = ModelVersion.objects.create(
        project=project,
        number=number,
        status=ModelStatus.TRAINING,
        embedding_model=model_name_current(),
        estimator=ESTIMATOR,
        calibration=CALIBRATION,
        n_train=len(labels),
        snapshot_hash=snapshot_hash(labels),
    )
    folder = models_dir(project)
    folder.mkdir(parents=True, exist_ok=True)
    ids_path = folder / f"v{number}.snapshot.npy"
    with _disk_full_fails(version, ids_path):
        np.save(ids_path, labels.case_ids)
    with _disk_full_fails(version, folder / f"v{number}.training.npz"):
        rows_path = training_rows_save(folder, number, labels)
    X = features_for(labels.hashes)
    loaded = time.perf_counter()
    model = make_classifier(
        ESTIMATOR,
        classes=[c.pk for c in classes],
        calibration=CALIBRATION,
        class_weight=CLASS_WEIGHT,
        random_state=0,
    )
    fault_point("train")  # crash tests kill the worker here, mid-fit
    model.fit(X, labels.labels, sample_weight=labels.weights)
    fitted = time.perf_counter()
    # The challenger's one evaluation: promotion reuses it while the evaluation labels are these.
    eval_labels = embedded_only(evaluation_set(project=project))
    report = evaluate_model(model=model, project=project, classes=classes, labels=eval_labels)
    evaluated = time.perf_counter()
    with _disk_full_fails(version, folder / f"v{number}.skops"):
        artifact = save_model(model, folder / f"v{number}.skops")
    version.artifact_path = str(artifact)
    version.status = ModelStatus.READY
    version.metrics = report.to_json()
    version.n_eval = report.n_samples
    version.snapshot_case_ids = (
        labels.case_ids.tolist() if len(labels) <= SNAPSHOT_IDS_IN_DB else []
    )
    version.params = {
        "given_label_weight": project.given_label_weight,
        "class_weight": CLASS_WEIGHT,
        "n_from_analysts": int(labels.from_analyst.sum()),
        "n_given": int((~labels.from_analyst).sum()),
        "snapshot_ids_file": str(ids_path),
        TRAINING_ROWS_KEY: str(rows_path),
        "n_labelled": n_labelled,
        "sampled": len(labels) < n_labelled,
        "calibration_fallback": _fallback_reason(model),
        EVAL_SNAPSHOT_KEY: snapshot_hash(eval_labels),
    }
    version.timings = {
        "features_s": round(loaded - started, 3),
        "fit_s": round(fitted - loaded, 3),
        "evaluate_s": round(evaluated - fitted, 3),
        "total_s": round(time.perf_counter() - started, 3),
    }
    version.trained_at = timezone.now()
    version.save()
    return version


@contextlib.contextmanager
def _disk_full_fails(version: ModelVersion, path: Path) -> Iterator[None]:
    """A full disk while writing `path` fails `version` (its files removed) with ERR_DISK_FULL;
    the error the job records names the file. Other errors pass through unchanged."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        message = ERR_DISK_FULL.format(path=path, number=version.number)
        for written in path.parent.glob(f"v{version.number}.*"):
            written.unlink(missing_ok=True)  # a partial file is worse than none
        ModelVersion.objects.filter(pk=version.pk).update(status=ModelStatus.FAILED, error=message)
        raise ApplicationError(message, details={"path": str(path)}) from exc


def _fallback_reason(model: Any) -> str | None:
    inner = getattr(model, "estimator_", None)
    return getattr(inner, "fallback_reason_", None)


def model_versions_fail_stale(*, project: Project) -> int:
    """Versions left `training` by a dead worker become `failed`; their temp files go too."""
    failed = ModelVersion.objects.filter(project=project, status=ModelStatus.TRAINING).update(
        status=ModelStatus.FAILED, error="the worker training it stopped"
    )
    folder = models_dir(project)
    if folder.exists():
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
    return failed
