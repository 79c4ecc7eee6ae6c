"""Label-issue detection reads its embeddings by rows: sampled fits, predictions in slices, and a
row reader in place of an array give exactly the results of one in-memory matrix."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from active_learning.ml.neighbours import near_duplicate_groups
from active_learning.ml.noise import out_of_fold
from active_learning.ml.noise.iterative import find_label_issues_iterative
from active_learning.ml.noise.neighbours import neighbour_label_votes
from active_learning.ml.noise.views import auxiliary_views


class Reader:
    """An ndarray behind `X[rows]` only (no `np.asarray`, no slicing of all rows at once),
    recording how many rows each read asked for."""

    def __init__(self, X: np.ndarray) -> None:
        self.X = X
        self.reads: list[int] = []

    def __getitem__(self, key: np.ndarray) -> np.ndarray:
        assert isinstance(key, np.ndarray), key
        self.reads.append(int(key.size))
        return np.array(self.X[key])


class SampledFit:
    """The detector's sampled model before sampling moved into `out_of_fold_proba`: it sampled
    the rows it was given (`default_rng(m)`, m of them), then fitted logistic regression."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows

    def fit(self, X: np.ndarray, y: np.ndarray) -> SampledFit:
        if y.shape[0] > self.max_rows:
            rng = np.random.default_rng(y.shape[0])
            keep = np.sort(rng.choice(y.shape[0], self.max_rows, replace=False))
            X, y = X[keep], y[keep]
        self.model_ = LogisticRegression(C=10.0, max_iter=1000).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(X))


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """600 float32 rows of 5 overlapping classes (one of them rare), some labels flipped."""
    rng = np.random.default_rng(7)
    y = np.concatenate([np.repeat(np.arange(4), 149), [4, 4, 4, 4]])
    centres = rng.normal(0, 3.0, size=(5, 8))
    X = (centres[y] + rng.normal(0, 1.5, size=(y.size, 8))).astype(np.float32)
    flip = rng.random(y.size) < 0.15
    y = np.where(flip, rng.integers(0, 4, y.size), y)
    return X, y


def test_sampled_training_rows_equal_a_model_that_samples_them_itself(blobs) -> None:
    """`fit_max_rows` fits each fold model on the rows a sampling estimator would pick: the
    probabilities (and the iterative detector's flags) are identical, while only the sample
    is read."""
    X, y = blobs
    reader = Reader(X)
    mask, proba = find_label_issues_iterative(
        reader, y, n_classes=5, rounds=2, filter_by="both", fit_max_rows=200
    )
    old_mask, old_proba = find_label_issues_iterative(
        X, y, n_classes=5, rounds=2, filter_by="both", estimator=lambda: SampledFit(200)
    )
    np.testing.assert_array_equal(proba, old_proba)
    np.testing.assert_array_equal(mask, old_mask)
    assert mask.any() and max(reader.reads) <= 200  # a fit sample or a fold's test rows
    # Below the cap nothing is sampled: the default model on every training row.
    np.testing.assert_array_equal(
        out_of_fold.out_of_fold_proba(X, y, fit_max_rows=10_000),
        out_of_fold.out_of_fold_proba(X, y),
    )


def test_predictions_in_slices_equal_one_call(blobs, monkeypatch) -> None:
    """Test rows predicted a slice at a time (near-equal slices) give the same probabilities,
    bit for bit, as one call on all of them; no read exceeds a slice."""
    X, y = blobs
    whole = out_of_fold.out_of_fold_proba(X, y, n_classes=5, random_state=2)
    monkeypatch.setattr(out_of_fold, "PREDICT_ROWS", 7)
    reader = Reader(X)
    sliced = out_of_fold.out_of_fold_proba(reader, y, n_classes=5, random_state=2, fit_max_rows=50)
    np.testing.assert_array_equal(
        sliced,
        out_of_fold.out_of_fold_proba(X, y, n_classes=5, random_state=2, fit_max_rows=50),
    )
    assert max(reader.reads) == 50  # the fit samples; every prediction read has <= 7 rows
    assert sorted(set(reader.reads))[-2] <= 7
    np.testing.assert_array_equal(
        out_of_fold.out_of_fold_proba(Reader(X), y, n_classes=5, random_state=2), whole
    )
    model = LogisticRegression().fit(X[y < 3], y[y < 3])
    rows = np.arange(0, 600, 3)
    got = out_of_fold.predict_proba_in_slices(model, Reader(X), rows, n_classes=5)
    np.testing.assert_array_equal(got[:, :3], model.predict_proba(X[rows]))
    assert not got[:, 3:].any()
    assert out_of_fold.predict_proba_in_slices(model, X, rows[:0], n_classes=5).shape == (0, 5)


def test_neighbour_votes_and_groups_from_a_row_reader_equal_the_arrays(blobs) -> None:
    """The neighbour view, the auxiliary views and near-duplicate groups read rows only, and
    give what they give on the array."""
    X, y = blobs
    queries = np.arange(0, 600, 5)
    voters = np.arange(600) % 7 != 0
    np.testing.assert_array_equal(
        neighbour_label_votes(
            Reader(X), y, n_classes=5, max_reference=300, voters=voters, queries=queries
        ),
        neighbour_label_votes(X, y, n_classes=5, max_reference=300, voters=voters, queries=queries),
    )
    proba = out_of_fold.out_of_fold_proba(X, y, n_classes=5)
    mask = proba.argmax(axis=1) != y
    texts = [f"case {i} class {c}" for i, c in enumerate(y)]

    def views(embeddings):
        return auxiliary_views(
            embeddings,
            lambda rows: [texts[i] for i in rows],
            y,
            n_classes=5,
            embedding_proba=proba,
            embedding_mask=mask,
            max_rows=100,
        )

    for got, expected in zip(views(Reader(X)), views(X), strict=True):
        np.testing.assert_array_equal(got, expected)
    near = np.repeat(X[:20], 3, axis=0) + np.float32(1e-4)
    keys = np.repeat(np.arange(20) % 3, 3) - (np.arange(60) % 9 == 0)
    for got, expected in zip(
        near_duplicate_groups(Reader(near), keys, threshold=0.99),
        near_duplicate_groups(near, keys, threshold=0.99),
        strict=True,
    ):
        np.testing.assert_array_equal(got, expected)
