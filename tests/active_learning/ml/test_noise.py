"""Confident learning on numpy: equal to cleanlab (test-only baseline), out-of-fold probabilities."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
from cleanlab.count import compute_confident_joint, get_confident_thresholds
from cleanlab.filter import find_label_issues as cl_find_label_issues
from cleanlab.rank import get_label_quality_scores
from sklearn.linear_model import LogisticRegression

from active_learning.ml import noise


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    pred_probs = rng.dirichlet(np.ones(4) * 0.7, size=60)
    labels = np.where(rng.random(60) < 0.7, pred_probs.argmax(axis=1), rng.integers(0, 4, 60))
    labels[:4] = np.arange(4)  # every class present
    return labels, pred_probs


@pytest.fixture(scope="module")
def confusable() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """6 blob classes in pairs of near neighbours; 20% of labels moved to the paired class."""
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 4, size=(3, 10))
    means = np.vstack(
        [c + d for c in centres for d in (rng.normal(0, 1.2, 10), rng.normal(0, 1.2, 10))]
    )
    y = np.repeat(np.arange(6), 150)
    X = means[y] + rng.normal(0, 1.0, size=(y.size, 10))
    flip = rng.random(y.size) < 0.2
    noisy = y.copy()
    noisy[flip] = y[flip] ^ 1  # 0<->1, 2<->3, 4<->5: the nearest class
    pred_probs = noise.out_of_fold_proba(X, noisy, n_classes=6, random_state=0)
    return X, y, noisy, pred_probs


def test_confident_thresholds_equal_cleanlabs(small) -> None:
    """Per-class thresholds equal cleanlab's get_confident_thresholds."""
    labels, pred_probs = small
    np.testing.assert_allclose(
        noise.confident_thresholds(labels, pred_probs), get_confident_thresholds(labels, pred_probs)
    )


def test_confident_joint_equals_cleanlabs_exactly(small) -> None:
    """The confident joint (raw and calibrated) is exactly cleanlab's on a fixed small input."""
    labels, pred_probs = small
    for calibrate in (False, True):
        ours = noise.confident_joint(labels, pred_probs, calibrate=calibrate)
        theirs = compute_confident_joint(labels, pred_probs, calibrate=calibrate)
        np.testing.assert_array_equal(ours, theirs)
    cj = noise.confident_joint(labels, pred_probs)
    np.testing.assert_array_equal(cj.sum(axis=1), np.bincount(labels, minlength=4))


def test_flagged_sets_equal_cleanlabs_on_the_small_input(small) -> None:
    """All three prune methods flag the same rows as cleanlab's find_label_issues."""
    labels, pred_probs = small
    for filter_by in ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning"):
        ours = noise.find_label_issues(labels, pred_probs, filter_by=filter_by)
        theirs = cl_find_label_issues(labels, pred_probs, filter_by=filter_by, n_jobs=1)
        np.testing.assert_array_equal(ours, theirs, err_msg=filter_by)


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_faithful_flags_match_cleanlab_on_confusable_noise(confusable) -> None:
    """With 20% nearest-class noise the faithful flagged set has Jaccard >= 0.9 with cleanlab's."""
    _, y, noisy, pred_probs = confusable
    for filter_by in ("prune_by_noise_rate", "both"):
        ours = noise.find_label_issues(noisy, pred_probs, filter_by=filter_by)
        theirs = cl_find_label_issues(noisy, pred_probs, filter_by=filter_by, n_jobs=1)
        assert _jaccard(ours, theirs) >= 0.9
    ours = noise.find_label_issues(noisy, pred_probs)
    assert (ours & (noisy != y)).sum() / ours.sum() > 0.5  # mostly real errors


def test_label_quality_scores_equal_cleanlabs(small) -> None:
    """Self-confidence and normalized margin equal cleanlab's label quality scores."""
    labels, pred_probs = small
    for method in ("self_confidence", "normalized_margin"):
        np.testing.assert_allclose(
            noise.label_quality_scores(labels, pred_probs, method=method),
            get_label_quality_scores(labels, pred_probs, method=method, adjust_pred_probs=False),
        )


def test_ranking_puts_the_worst_label_first(small) -> None:
    """Flagged rows are ranked by ascending label quality."""
    labels, pred_probs = small
    mask = noise.find_label_issues(labels, pred_probs)
    ranked = noise.rank_label_issues(mask, labels, pred_probs, method="normalized_margin")
    assert sorted(ranked.tolist()) == np.flatnonzero(mask).tolist()
    q = noise.label_quality_scores(labels, pred_probs, method="normalized_margin")[ranked]
    assert np.all(np.diff(q) >= 0)


def test_out_of_fold_proba_handles_rare_classes_and_factories() -> None:
    """A class with fewer members than folds gets probabilities; factories and estimators both work."""
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(0, 1, (40, 3)), rng.normal(4, 1, (40, 3)), rng.normal(-4, 1, (2, 3))])
    y = np.array([0] * 40 + [1] * 40 + [2] * 2)
    for est in (None, LogisticRegression(C=1.0), lambda: LogisticRegression(C=5.0)):
        p = noise.out_of_fold_proba(X, y, n_classes=4, estimator=est, n_splits=5)
        assert p.shape == (82, 4)
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
        assert np.all(p[:, 3] == 0)  # a class nobody carries
        assert np.all(p[80:, 2] > 0.2)  # the rare class is known to every fold model
    p1 = noise.out_of_fold_proba(X, y, random_state=3)
    p2 = noise.out_of_fold_proba(X, y, random_state=3)
    np.testing.assert_array_equal(p1, p2)


def test_iterative_detection_finds_more_confusable_noise(confusable) -> None:
    """One round equals the plain detector; a second round is at least as good on confusable noise."""
    X, y, noisy, pred_probs = confusable
    truth = noisy != y
    one, _ = noise.find_label_issues_iterative(X, noisy, rounds=1, pred_probs=pred_probs)
    np.testing.assert_array_equal(one, noise.find_label_issues(noisy, pred_probs))
    two, p2 = noise.find_label_issues_iterative(X, noisy, rounds=2, pred_probs=pred_probs)
    assert p2.shape == pred_probs.shape

    def f1(mask: np.ndarray) -> float:
        tp = (mask & truth).sum()
        return 2 * tp / (mask.sum() + truth.sum())

    assert f1(two) >= f1(one) - 0.01


def test_bad_input_raises_noise_error(small) -> None:
    """Mismatched shapes, unknown filters and empty input raise NoiseError with module messages."""
    labels, pred_probs = small
    with pytest.raises(
        noise.NoiseError, match=re.escape(noise.SHAPE_MISMATCH.format(n_labels=59, n_rows=60))
    ):
        noise.find_label_issues(labels[:-1], pred_probs)
    with pytest.raises(noise.NoiseError, match="Unknown filter_by"):
        noise.find_label_issues(labels, pred_probs, filter_by="nope")
    with pytest.raises(noise.NoiseError, match=re.escape(noise.EMPTY_INPUT)):
        noise.out_of_fold_proba(np.zeros((0, 2)), np.zeros(0, dtype=int))
    with pytest.raises(noise.NoiseError, match=re.escape(noise.TOO_FEW_CLASSES)):
        noise.out_of_fold_proba(np.zeros((6, 2)), np.zeros(6, dtype=int))


def test_product_code_never_imports_cleanlab() -> None:
    """cleanlab is AGPL-3.0: the product's ml modules must not import it."""
    ml_dir = Path(noise.__file__).resolve().parents[1]  # active_learning/ml
    for path in ml_dir.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "cleanlab" for n in names), path
