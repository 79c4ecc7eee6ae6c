"""Label-issue detection checks the evaluation split's given labels too: scored out of sample by
the pool-trained fold models, never trained on, never queued for review."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from active_learning.ml.noise import out_of_fold
from active_learning.models import Embedding, LabelIssue
from active_learning.selectors import evaluation_set, training_set
from active_learning.services import issues as issues_service
from active_learning.services.embeddings import MatrixRows, model_name_current
from active_learning.services.issues import VIEW_EMBEDDING, find_label_issues
from active_learning.services.review_items import review_items_refresh
from labeling.models import Case, QueueItem, QueueKind, ResolvedLabel, Split, Tier
from labeling.services.exports import ExportOptions, case_export
from tests.factories import CaseFactory, LabelClassFactory, ProjectFactory

pytestmark = pytest.mark.django_db  # both databases: the writes have a path for each

DIM = 12


class World:
    """Three separated clusters of correctly labelled pool cases with two wrong given labels
    (Gambling texts labelled Retail), and an evaluation split of correctly labelled cases with
    two wrong given labels of its own. `vectors` maps a case id to its stored float32 vector."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(3)
        self.words = np.random.default_rng(4)
        self.vectors: dict[int, np.ndarray] = {}
        self.project = ProjectFactory(batch_size=5, given_label_weight=1.0)
        self.retail = LabelClassFactory(project=self.project, name="Retail", tier=Tier.SUPPORTABLE)
        self.gambling = LabelClassFactory(
            project=self.project, name="Gambling", tier=Tier.PROHIBITED
        )
        self.crypto = LabelClassFactory(project=self.project, name="Crypto", tier=Tier.RESTRICTED)
        classes = (self.retail, self.gambling, self.crypto)
        self.centre = {c.pk: 4.0 * np.eye(DIM)[i] for i, c in enumerate(classes)}
        self.pool = [self.case(c, c, Split.POOL) for c in classes for _ in range(25)]
        # The wrong ones sit near the Gambling centre, where the model is surest: well above
        # the class's confidence threshold, and too far apart to be near-duplicates.
        self.pool_wrong = [self.case(self.retail, self.gambling, Split.POOL, 0.3) for _ in "ab"]
        self.eval = [self.case(c, c, Split.EVAL) for c in classes for _ in range(6)]
        self.eval_wrong = [self.case(self.retail, self.gambling, Split.EVAL, 0.3) for _ in "ab"]

    def case(self, given, cluster, split: str, spread: float = 1.0):
        # A text that says nothing of the class: the factory's numbers follow creation order
        # across the whole test run, and the detector's word model would learn them.
        words = "".join(self.words.choice(list("abcdefghij"), 8))
        case = CaseFactory(
            project=self.project, given_label=given, split=split, text=f"Merchant {words}."
        )
        vector = self.centre[cluster.pk] + self.rng.normal(0.0, spread, DIM)
        unit = (vector / np.linalg.norm(vector)).astype("<f4")
        Embedding.objects.create(
            model_name=model_name_current(),
            content_hash=case.content_hash,
            dim=DIM,
            vector=unit.tobytes(),
        )
        self.vectors[case.pk] = unit
        return case


@pytest.fixture
def world(settings, tmp_path) -> World:
    settings.WORKBENCH_DATA_DIR = tmp_path
    return World()


@pytest.fixture
def fits(monkeypatch) -> list[np.ndarray]:
    """The training rows of every logistic regression fitted (the detector's fold models)."""
    seen: list[np.ndarray] = []
    original = LogisticRegression.fit

    def spy(self, X, y, *args, **kwargs):
        seen.append(np.array(X, dtype=np.float32))
        return original(self, X, y, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", spy)
    return seen


def _rows(matrix: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in np.ascontiguousarray(matrix, dtype=np.float32)}


def _issues(project) -> dict[int, LabelIssue]:
    return {i.case_id: i for i in LabelIssue.objects.filter(project=project)}


def test_evaluation_cases_are_scored_by_fold_models_that_never_trained_on_them(world, fits) -> None:
    """Every evaluation case with a given label gets a score and a suggestion; no fold model's
    training rows hold an evaluation case, while every pool case trains some fold model."""
    result = find_label_issues(project=world.project)
    issues = _issues(world.project)
    eval_ids = {c.pk for c in [*world.eval, *world.eval_wrong]}
    pool_ids = {c.pk for c in [*world.pool, *world.pool_wrong]}
    assert set(issues) == eval_ids | pool_ids
    assert result["evaluation_checked"] == len(eval_ids) == 20
    assert result["checked"] == len(pool_ids)

    assert len(fits) == 2 * 5  # two rounds of five folds
    trained = set().union(*(_rows(X) for X in fits))
    assert not trained & {world.vectors[c].tobytes() for c in eval_ids}
    assert {world.vectors[c].tobytes() for c in pool_ids} - {
        world.vectors[c.pk].tobytes() for c in world.pool_wrong
    } <= trained

    for case in world.eval_wrong:
        issue = issues[case.pk]
        assert issue.in_prune_set and issue.score > 0.5
        assert issue.given_label_id == world.retail.pk
        assert issue.suggested_label_id == world.gambling.pk and issue.suggested_p > 0.5
        assert issue.views == [VIEW_EMBEDDING]
    clean = [issues[c.pk] for c in world.eval]
    assert all(i.score < 0.5 and not i.in_prune_set and not i.views for i in clean)
    assert result["evaluation_flagged"] == 2


def test_scoring_the_evaluation_split_leaves_the_pools_flags_and_scores_alone(world) -> None:
    """The pool's verdicts are those of a detection without any evaluation case."""
    find_label_issues(project=world.project)
    pool_ids = {c.pk for c in [*world.pool, *world.pool_wrong]}
    with_eval = {
        c: (i.in_prune_set, round(i.score, 9), i.suggested_label_id)
        for c, i in _issues(world.project).items()
        if c in pool_ids
    }
    Case.objects.filter(project=world.project, split=Split.EVAL).update(given_label=None)
    result = find_label_issues(project=world.project)
    without = {
        c: (i.in_prune_set, round(i.score, 9), i.suggested_label_id)
        for c, i in _issues(world.project).items()
    }
    assert result["evaluation_checked"] == 0
    assert with_eval == without
    assert {c for c, v in without.items() if v[0]} == {c.pk for c in world.pool_wrong}


def _stored(project) -> list[tuple]:
    """Everything a detection stores: the issues' every column, then the doubtful flags."""
    fields = [f.attname for f in LabelIssue._meta.fields if f.attname not in ("id", "detected_at")]
    rows = LabelIssue.objects.filter(project=project).order_by("case_id").values_list(*fields)
    doubtful = ResolvedLabel.objects.filter(case__project=project).order_by("case_id")
    return [*rows, *doubtful.values_list("case_id", "doubtful")]


def test_detection_reading_its_embeddings_on_demand_equals_one_copy_of_them(
    world, monkeypatch
) -> None:
    """The detector reads the matrix file a fit sample or a prediction slice at a time (a copy
    of every row is 1.5 GB at 1M cases); with samples and slices small enough to matter here,
    every stored score, suggestion, flag and doubtful mark is what one in-memory copy gives."""
    monkeypatch.setattr(issues_service, "FIT_MAX_ROWS", 40)  # fold models fit on ~61 rows
    monkeypatch.setattr(out_of_fold, "PREDICT_ROWS", 5)
    assert isinstance(issues_service._features([world.pool[0].content_hash]), MatrixRows)
    found = find_label_issues(project=world.project)
    on_demand = _stored(world.project)
    assert found["flagged"] == 2 and found["evaluation_flagged"] == 2
    read = issues_service._features
    monkeypatch.setattr(issues_service, "_features", lambda hashes: np.asarray(read(hashes)))
    monkeypatch.setattr(out_of_fold, "PREDICT_ROWS", 10**9)
    assert find_label_issues(project=world.project) == found
    assert _stored(world.project) == on_demand


def test_flagged_evaluation_cases_get_no_review_item_and_stay_out_of_training(world) -> None:
    """A flagged evaluation case is doubtful (export, search) but never queued for review, never
    in a training snapshot and never an evaluation label."""
    find_label_issues(project=world.project)
    review_items_refresh(project=world.project)
    reviewed = set(
        QueueItem.objects.filter(project=world.project, kind=QueueKind.REVIEW).values_list(
            "case_id", flat=True
        )
    )
    assert reviewed == {c.pk for c in world.pool_wrong}
    wrong_eval = {c.pk for c in world.eval_wrong}
    doubtful = set(
        ResolvedLabel.objects.filter(case__project=world.project, doubtful=True).values_list(
            "case_id", flat=True
        )
    )
    assert wrong_eval | {c.pk for c in world.pool_wrong} == doubtful
    eval_ids = {c.pk for c in [*world.eval, *world.eval_wrong]}
    assert not eval_ids & set(training_set(project=world.project).case_ids.tolist())
    assert len(evaluation_set(project=world.project)) == 0


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_the_exports_label_issue_columns_are_filled_for_evaluation_cases(
    world, tmp_path, fmt
) -> None:
    """After a detection every evaluation case with a given label has its score, suggestion and
    probability in the export; a flagged one names the views that flag it, and its final label
    stays the given one (people decide)."""
    import json

    import pyarrow.parquet as pq

    find_label_issues(project=world.project)
    issues = _issues(world.project)
    path = tmp_path / f"out.{fmt}"
    case_export(project=world.project, fmt=fmt, path=path, options=ExportOptions(split="eval"))
    if fmt == "jsonl":
        with open(path, encoding="utf-8") as file:
            rows = {r["external_id"]: r for r in map(json.loads, file)}
    else:
        rows = {r["external_id"]: r for r in pq.read_table(path).to_pylist()}
    cases = [*world.eval, *world.eval_wrong]
    assert set(rows) == {c.external_id for c in cases}
    for case in cases:
        row, issue = rows[case.external_id], issues[case.pk]
        assert row["label_issue_score"] == pytest.approx(issue.score)
        assert row["suggested_probability"] == pytest.approx(issue.suggested_p)
        assert row["label_issue_flagged"] is issue.in_prune_set
    for case in world.eval_wrong:
        row = rows[case.external_id]
        assert (row["suggested_label"], row["label_issue_flagged"]) == ("Gambling", True)
        assert row["suggested_by"] == VIEW_EMBEDDING
        assert (row["final_label"], row["doubtful"]) == ("Retail", True)
    assert all(rows[c.external_id]["suggested_by"] == "" for c in world.eval)


@pytest.mark.django_db
def test_reviewers_answers_train_a_reranker_once_there_are_fifty(settings, tmp_path) -> None:
    """Below MIN_REVIEWS decided given labels the combined detector ranks; from 50 on, a model
    of the reviewers' answers is fitted and used only if it ranks the reviewed labels better
    (cross-validated) than the detector does."""
    from active_learning.ml.noise import MIN_REVIEWS
    from labeling.models import ResolutionSource, ResolvedLabel, SyntheticTruth
    from tests.pipeline import generated_project, store_vectors

    settings.WORKBENCH_DATA_DIR = tmp_path
    project = generated_project(n=300, noise=0.3, seed=5)
    cases = list(Case.objects.filter(project=project, split="pool").order_by("pk"))
    rng = np.random.default_rng(1)
    truth = dict(SyntheticTruth.objects.values_list("case_id", "true_label_id"))
    centres = {c: rng.normal(0.0, 1.0, 16) for c in set(truth.values())}
    store_vectors(
        {c.content_hash: (centres[truth[c.pk]] + rng.normal(0.0, 0.6, 16)).astype(np.float32)
         for c in cases}
    )  # fmt: skip

    def review(batch) -> None:
        for case in batch:
            ResolvedLabel.objects.update_or_create(
                case=case,
                defaults={"label_id": truth[case.pk], "source": ResolutionSource.REVIEW},
            )

    review(cases[: MIN_REVIEWS - 1])
    few = find_label_issues(project=project)["reviewer_model"]
    assert few == {"reviews": MIN_REVIEWS - 1, "used": False}
    review(cases[MIN_REVIEWS - 1 : MIN_REVIEWS + 20])
    learnt = find_label_issues(project=project)["reviewer_model"]
    assert learnt["reviews"] == MIN_REVIEWS + 20
    assert 0.0 <= learnt["cv_ap"] <= 1.0 and 0.0 <= learnt["unsupervised_ap"] <= 1.0
    assert learnt["used"] == (learnt["cv_ap"] > learnt["unsupervised_ap"])
