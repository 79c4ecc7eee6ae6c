"""Label-issue detection: three views of the pool's labels combined, and the evaluation split's
given labels scored out of sample by the embedding view's fold models.

Every pool case with a label is checked (the analysts' label overrides the given one) by three
views (`active_learning.ml.noise.views`): the embedding model (out-of-fold logistic regression,
two rounds of confident learning), the similarity-weighted labels of its nearest cases, and an
out-of-fold word and character n-gram model; the last two neither learn from nor vote with the
cases the first flags. Their probabilities are combined (a weighted geometric mean). Each case
gets a score (1 - combined probability of its label: higher is more likely wrong), a suggested
label with its combined probability, and whether confident learning's prune set (`both`) on the
combined probabilities holds it; a flagged case's `views` name the views whose own top class is
the suggestion. A case a reviewer or adjudicator decided is never in the prune set again. A given label in the prune set that no analyst confirmed is *doubtful*:
kept out of the deciding model's training. Prune-set cases with the same given, checked and
suggested labels whose embeddings are near-duplicates (cosine >= GROUP_COSINE) form a group a
review decision may extend to.

Evaluation cases are predicted by the embedding view's last-round pool-trained fold models (the
mean of their probabilities; the other two views are not run for them) and never train one;
they are flagged by confident learning over pool and evaluation rows together, while the pool's flags stay those of the pool alone. Their given
labels may become doubtful (export and search show it), but they get no review items
(`review_items._candidates`) and no near-duplicate groups: an evaluation case never trains and
its evaluation label comes from evaluation draws only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone
from sklearn.metrics import average_precision_score

from active_learning.ml.neighbours import GROUP_COSINE, GROUP_MAX, near_duplicate_groups
from active_learning.ml.noise import (
    MIN_REVIEWS,
    VIEWS,
    Detection,
    NoiseError,
    auxiliary_views,
    combine_views,
    contender_score,
    contenders,
    corrections,
    find_label_issues_iterative,
    fit_reviewer_model,
    label_quality_scores,
    rerank,
    reviewer_features,
    view_weights,
)
from active_learning.ml.noise import find_label_issues as confident_learning_flags
from active_learning.ml.noise._common import EstimatorLike, _new_estimator
from active_learning.ml.noise.out_of_fold import predict_proba_in_slices
from active_learning.models import LabelIssue
from active_learning.selectors import (
    LabelSet,
    decided_case_ids,
    detection_set,
    evaluation_check_set,
    project_classes,
)
from active_learning.services.bulk import copy_binary_rows, pg_timestamp
from active_learning.services.embeddings import MatrixRows, embedded_only, matrix_load
from labeling.models import Case, Project, ResolutionSource, ResolvedLabel
from workbench.core.models import Job

MIN_LABELS = 20
# Above this many labels, each out-of-fold model fits on a seeded sample of this many rows of its
# training folds (a 1M-label detection: ~90 s instead of ~30 min; see bench/pipeline.py); only
# the sample is read from the matrix file.
FIT_MAX_ROWS = 50_000
_WRITE_BATCH = 5000
_TEXT_BATCH = 10_000
FILTER_BY = "both"
# The names a flagged case's `views` list holds (cards and exports show them), by view.
VIEW_NAMES = {"embedding": "embedding model", "neighbours": "nearest cases", "lexical": "wording"}
VIEW_EMBEDDING = VIEW_NAMES["embedding"]

SKIP_TOO_FEW = "skipped: {n} labelled pool cases, {needed} needed"
SKIP_ONE_CLASS = "skipped: labels of fewer than two classes"
ERR_NOT_EMBEDDED = "{n} labelled cases have no embedding yet: run embed_cases first."


def _features(hashes: list[str]) -> MatrixRows:
    """The embeddings of `hashes`, read from the matrix file as the detector asks for them.

    Never one copy of them all: the fold models learn from samples and predict slices, the
    auxiliary views read a few tens of thousands of rows; a copy at 1M cases is 1.5 GB.
    """
    matrix = matrix_load()
    rows = matrix.rows_for(hashes)
    if (rows < 0).any():
        raise RuntimeError(ERR_NOT_EMBEDDED.format(n=int((rows < 0).sum())))
    return matrix.rows(rows)


def find_label_issues(
    *,
    project: Project,
    job: Job | None = None,
    progress: Callable[[float, str], None] | None = None,
    rounds: int = 2,
) -> dict[str, Any]:
    """Score every labelled pool case and every evaluation case with a given label; store the
    LabelIssue rows (with each flagged case's agreeing views) and the doubtful flags."""
    labels = embedded_only(detection_set(project=project))
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
    fold_models = _FoldModels(None)
    mask, proba = find_label_issues_iterative(
        X,
        y,
        n_classes=len(classes),
        estimator=fold_models,
        rounds=rounds,
        filter_by=FILTER_BY,
        random_state=0,
        fit_max_rows=FIT_MAX_ROWS,
    )
    quality = label_quality_scores(y, proba, method="self_confidence")
    if progress:
        progress(0.45, "nearest cases and the wording model")
    votes, lexical, checked = auxiliary_views(
        X,
        lambda rows: _texts(project, labels.case_ids[rows]),
        y,
        n_classes=len(classes),
        embedding_proba=proba,
        embedding_mask=np.asarray(mask, dtype=bool),
        seed=0,
    )
    views = [proba, votes, lexical]
    weights = view_weights(y[checked], [v[checked] for v in views])
    detection = combine_views(y, views, weights=weights, checked=checked)
    suggested, suggested_p = detection.suggested, detection.suggested_p
    # A reviewer's or adjudicator's decision settles the case: a confirmed given label is not
    # flagged again, however the models see it.
    decided_ids = decided_case_ids(project=project)
    decided = np.isin(labels.case_ids, decided_ids)
    mask = detection.flagged & ~decided
    score, learnt = _reviewers_rerank(
        labels=labels,
        y=y,
        column=column,
        views=views,
        weights=weights,
        detection=detection,
        decided=decided,
    )
    class_ids = np.array([c.pk for c in classes], dtype=np.int64)
    if progress:
        progress(0.7, "scoring the evaluation split's given labels")
    held_out = _evaluation_scored(
        project=project,
        column=column,
        models=fold_models.last_round(rounds),
        pool_y=y,
        pool_proba=proba,
        decided_ids=decided_ids,
    )
    if progress:
        progress(0.75, f"grouping near-duplicates of {int(mask.sum())} flagged cases")
    groups = _groups(X, labels, class_ids[suggested], mask)
    if progress:
        progress(0.8, "writing label issues")
    flagged_given = set(labels.case_ids[mask & ~labels.from_analyst].tolist())
    flagged_given.update(held_out.case_ids[held_out.mask].tolist())
    with transaction.atomic():
        LabelIssue.objects.filter(project=project).delete()
        _issues_write(
            project=project,
            job=job,
            case_ids=np.concatenate([labels.case_ids, held_out.case_ids]),
            given=np.concatenate([labels.labels, held_out.labels]),
            suggested=class_ids[np.concatenate([suggested, held_out.suggested])],
            suggested_p=np.concatenate([suggested_p, held_out.suggested_p]).astype(np.float64),
            quality=np.concatenate([quality, held_out.quality]).astype(np.float64),
            score=np.concatenate([score, held_out.score]).astype(np.float64),
            mask=np.concatenate([mask, held_out.mask]),
            groups=groups,
            views={
                VIEW_NAMES[view]: np.concatenate(
                    [mask & detection.agrees[:, j], held_out.mask & (view == "embedding")]
                )
                for j, view in enumerate(VIEWS)
            },
        )
        _sync_doubtful(project=project, flagged_given=flagged_given)
    return {
        "checked": len(labels),
        "flagged": int(mask.sum()),
        "evaluation_checked": int(held_out.case_ids.size),
        "evaluation_flagged": int(held_out.mask.sum()),
        "doubtful_given": len(flagged_given),
        "decided": int(decided.sum()),
        "grouped": len(groups),
        "reviewer_model": learnt,
    }


def _reviewers_rerank(
    *,
    labels: LabelSet,
    y: np.ndarray,
    column: dict[int, int],
    views: list[np.ndarray],
    weights: np.ndarray,
    detection: Detection,
    decided: np.ndarray,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The open cases' scores, re-ranked by a model of the reviewers' answers once there are
    MIN_REVIEWS decided given labels of both kinds, and only when its cross-validated AP on
    them beats the unsupervised score's (on nearly all-wrong reviews, e.g. uniform noise, it
    does not); otherwise the combined detector's scores. Returns the scores and what was
    learnt (for the job's result)."""
    score = detection.score.copy()
    given = labels.given if labels.given is not None else np.full(len(labels), -1)
    reviewed = decided & (given >= 0)
    learnt: dict[str, Any] = {"reviews": int(reviewed.sum()), "used": False}
    if learnt["reviews"] < MIN_REVIEWS:
        return score, learnt
    n_classes = views[0].shape[1]
    given_cols = np.array([column[int(g)] for g in given[reviewed]], dtype=np.int64)
    answers = (labels.labels[reviewed] != given[reviewed]).astype(np.int64)
    # The views' evidence on the given label the reviewer judged (not on their own answer).
    seen = combine_views(given_cols, [v[reviewed] for v in views], weights=weights)
    # How common each row's correction is among the other open flagged cases (features of the
    # model). Decided rows are not counted: a reviewed row's label is the reviewer's answer.
    open_rows = ~decided
    contender = contenders(detection.pred_probs, y)
    proposed = corrections(
        y[open_rows], contender[open_rows], detection.flagged[open_rows], n_classes=n_classes
    )
    reviewed_features = reviewer_features(
        seen.signals,
        given_cols,
        n_classes=n_classes,
        contender=contenders(seen.pred_probs, given_cols),
        proposed=proposed,
    )
    try:
        model, cv_ap = fit_reviewer_model(reviewed_features, answers, seed=0)
    except NoiseError:  # one kind of answer only
        return score, learnt
    unsupervised_ap = float(average_precision_score(answers, seen.score))
    learnt.update(cv_ap=round(cv_ap, 4), unsupervised_ap=round(unsupervised_ap, 4))
    if cv_ap <= unsupervised_ap:
        return score, learnt
    features = reviewer_features(
        detection.signals[open_rows],
        y[open_rows],
        n_classes=n_classes,
        sources=(~labels.from_analyst[open_rows]).astype(np.float64),
        contender=contender[open_rows],
        proposed=proposed,
        counted=detection.flagged[open_rows],
    )
    score[open_rows] = rerank(model, features)
    learnt["used"] = True
    return score, learnt


class _FoldModels:
    """The detector's estimator factory: makes each fold model and keeps it, in order.

    Every round of the pool's out-of-fold detection fits the same number of fold models (one
    per fold), so the last round's are the last `len(made) // rounds`.
    """

    def __init__(self, estimator: EstimatorLike) -> None:
        self.estimator = estimator
        self.made: list[Any] = []

    def __call__(self) -> Any:
        model = _new_estimator(self.estimator)
        self.made.append(model)
        return model

    def last_round(self, rounds: int) -> list[Any]:
        per_round, left = divmod(len(self.made), rounds)
        if per_round == 0 or left:
            raise RuntimeError(f"{len(self.made)} fold models cannot be {rounds} equal rounds")
        return self.made[-per_round:]


@dataclass
class _HeldOut:
    """The evaluation split's scored given labels, aligned arrays (class columns, not ids)."""

    case_ids: np.ndarray
    labels: np.ndarray  # label class ids (the given labels)
    suggested: np.ndarray
    suggested_p: np.ndarray
    quality: np.ndarray
    score: np.ndarray
    mask: np.ndarray


def _evaluation_scored(
    *,
    project: Project,
    column: dict[int, int],
    models: list[Any],
    pool_y: np.ndarray,
    pool_proba: np.ndarray,
    decided_ids: np.ndarray,
) -> _HeldOut:
    """Score the evaluation split's given labels by the mean of the pool-trained fold `models`.

    Flags come from confident learning over pool and evaluation rows together (thresholds need
    the pool's evidence); only the evaluation rows' verdicts are kept, so scoring them never
    changes which pool cases are flagged.
    """
    checked = embedded_only(evaluation_check_set(project=project))
    n = len(checked)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        none = np.zeros(0)
        return _HeldOut(empty, empty, empty, none, none, none, np.zeros(0, dtype=bool))
    y = np.array([column[int(label)] for label in checked.labels], dtype=np.int64)
    X = _features(checked.hashes)
    proba = np.zeros((n, pool_proba.shape[1]), dtype=np.float64)
    everyone = np.arange(n)
    for model in models:
        proba += predict_proba_in_slices(model, X, everyone, n_classes=proba.shape[1])
    proba /= len(models)
    flags = confident_learning_flags(
        np.concatenate([pool_y, y]), np.concatenate([pool_proba, proba]), filter_by=FILTER_BY
    )
    mask = np.asarray(flags, dtype=bool)[pool_y.size :] & ~np.isin(checked.case_ids, decided_ids)
    suggested = proba.argmax(axis=1)
    return _HeldOut(
        case_ids=checked.case_ids,
        labels=checked.labels,
        suggested=suggested,
        suggested_p=proba[np.arange(n), suggested],
        quality=np.asarray(label_quality_scores(y, proba, method="self_confidence")),
        score=contender_score(proba, y),
        mask=mask,
    )


def _texts(project: Project, case_ids: np.ndarray) -> list[str]:
    """The texts of `case_ids`, in their order (by primary key, _TEXT_BATCH ids a query: the
    auxiliary views ask for at most ~60,000 of a project's cases)."""
    ids = [int(c) for c in case_ids.tolist()]
    found: dict[int, str] = {}
    for start in range(0, len(ids), _TEXT_BATCH):
        rows = Case.objects.filter(project=project, pk__in=ids[start : start + _TEXT_BATCH])
        found.update(rows.values_list("pk", "text"))
    return [found.get(pk, "") for pk in ids]


def _groups(
    X: MatrixRows, labels: LabelSet, suggested: np.ndarray, mask: np.ndarray
) -> dict[int, list[int]]:
    """case id -> the other members of its near-duplicate group (nearest first), for prune-set
    cases that have one. Members share the case's given label, checked label and suggestion."""
    rows = np.flatnonzero(mask)
    if rows.size < 2:
        return {}
    given = labels.given if labels.given is not None else labels.labels
    triples = np.stack([given[rows], labels.labels[rows], suggested[rows]], axis=1)
    keys = np.full(len(labels), -1, dtype=np.int64)  # -1: not flagged, never grouped
    keys[rows] = np.unique(triples, axis=0, return_inverse=True)[1].reshape(-1)
    found = near_duplicate_groups(X, keys, threshold=GROUP_COSINE, max_size=GROUP_MAX)
    return {
        int(labels.case_ids[i]): labels.case_ids[found[i]].tolist()
        for i in rows.tolist()
        if found[i].size
    }


def _issues_write(
    *,
    project: Project,
    job: Job | None,
    case_ids: np.ndarray,
    given: np.ndarray,
    suggested: np.ndarray,
    suggested_p: np.ndarray,
    quality: np.ndarray,
    score: np.ndarray,
    mask: np.ndarray,
    groups: dict[int, list[int]],
    views: dict[str, np.ndarray],
) -> None:
    """Insert one LabelIssue per case: binary COPY on PostgreSQL, bulk_create batches else.

    `score` is the combined detector's (higher: more likely wrong), `quality` the embedding
    model's out-of-fold probability of the label (`self_confidence`).

    `views` maps a detection view's name to the rows it flags; a row's `views` list names
    those that flag it. `group` and `views` stay NULL for rows without one; on PostgreSQL they
    are set after the COPY by batched UPDATEs (binary COPY packs fixed-width columns only).
    """
    names = sorted(views)
    flagged_by = (
        np.stack([np.asarray(views[v], dtype=bool) for v in names], axis=1)
        if names
        else (np.zeros((case_ids.shape[0], 0), dtype=bool))
    )
    view_lists = {
        int(case_ids[i]): [names[j] for j in np.flatnonzero(flagged_by[i]).tolist()]
        for i in np.flatnonzero(flagged_by.any(axis=1)).tolist()
    }
    if connection.vendor == "postgresql":
        copy_binary_rows(
            LabelIssue._meta.db_table,
            [
                ("project_id", "int8", project.pk),
                ("case_id", "int8", case_ids),
                ("given_label_id", "int8", given),
                ("suggested_label_id", "int8", suggested),
                ("suggested_p", "float8", suggested_p),
                ("score", "float8", score),
                ("self_confidence", "float8", quality),
                ("in_prune_set", "bool", mask),
                ("job_id", "int8", None if job is None else job.pk),
                ("detected_at", "timestamptz", pg_timestamp(timezone.now())),
            ],
            int(case_ids.shape[0]),
        )
        _json_write_sql("group", groups)
        _json_write_sql("views", view_lists)
        return
    rows = zip(
        case_ids.tolist(), given.tolist(), suggested.tolist(), suggested_p.tolist(),
        quality.tolist(), score.tolist(), mask.tolist(),
        strict=True,
    )  # fmt: skip
    LabelIssue.objects.bulk_create(
        (
            LabelIssue(
                project=project,
                case_id=case_id,
                given_label_id=label,
                suggested_label_id=suggested_id,
                suggested_p=p,
                score=sc,
                self_confidence=q,
                in_prune_set=flagged,
                group=groups.get(case_id),
                views=view_lists.get(case_id, []),
                job=job,
            )
            for case_id, label, suggested_id, p, q, sc, flagged in rows
        ),
        batch_size=_WRITE_BATCH,
    )


def _json_write_sql(column: str, values: dict[int, list[Any]]) -> None:
    """Set a JSON column of the just-copied rows in batches of one UPDATE from two arrays each."""
    table = LabelIssue._meta.db_table
    items = list(values.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), _WRITE_BATCH):
            batch = items[start : start + _WRITE_BATCH]
            cursor.execute(
                f'UPDATE {table} i SET "{column}" = g.value::jsonb'
                " FROM unnest(%s::bigint[], %s::text[]) AS g(case_id, value)"
                " WHERE i.case_id = g.case_id",
                [[c for c, _ in batch], [json.dumps(m) for _, m in batch]],
            )


def _sync_doubtful(*, project: Project, flagged_given: set[int]) -> None:
    """Given-label resolutions are doubtful exactly while detection flags them.

    Resolutions made by analysts (including a noise flag without a label) are left alone.
    """
    if connection.vendor == "postgresql":
        _sync_doubtful_sql(project=project, flagged_given=flagged_given)
        return
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


def _sync_doubtful_sql(*, project: Project, flagged_given: set[int]) -> None:
    """`_sync_doubtful` as three set-based statements against a temporary table of the flags.

    With a million labels the flags can number 100,000+: too many for `IN (...)` lists and
    `bulk_create`.
    """
    resolved, cases = ResolvedLabel._meta.db_table, Case._meta.db_table
    flagged = np.array(sorted(flagged_given), dtype=np.int64)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS al_flagged_given (case_id bigint PRIMARY KEY)"
            " ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE al_flagged_given")
        copy_binary_rows("al_flagged_given", [("case_id", "int8", flagged)], flagged.size)
        cursor.execute("ANALYZE al_flagged_given")
        cursor.execute(
            f"UPDATE {resolved} r SET doubtful = false FROM {cases} c"
            " WHERE c.id = r.case_id AND c.project_id = %s AND r.source = %s AND r.doubtful"
            " AND NOT EXISTS (SELECT 1 FROM al_flagged_given f WHERE f.case_id = r.case_id)",
            [project.pk, ResolutionSource.GIVEN],
        )
        cursor.execute(
            f"UPDATE {resolved} r SET doubtful = true FROM al_flagged_given f"
            " WHERE f.case_id = r.case_id AND r.source = %s AND NOT r.doubtful",
            [ResolutionSource.GIVEN],
        )
        cursor.execute(
            f"INSERT INTO {resolved} (case_id, label_id, source, doubtful, excluded, updated_at)"
            f" SELECT c.id, c.given_label_id, %s, true, false, %s FROM al_flagged_given f"
            f" JOIN {cases} c ON c.id = f.case_id"
            f" WHERE NOT EXISTS (SELECT 1 FROM {resolved} x WHERE x.case_id = f.case_id)"
            " ORDER BY c.id",
            [ResolutionSource.GIVEN, timezone.now()],
        )
