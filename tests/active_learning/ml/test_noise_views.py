"""Label-error views (neighbours, lexical), their combination and the reviewer model, on arrays."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from active_learning.ml.noise import NoiseError
from active_learning.ml.noise.iterative import find_label_issues_iterative
from active_learning.ml.noise.lexical import lexical_features, lexical_out_of_fold_proba
from active_learning.ml.noise.neighbours import neighbour_label_votes
from active_learning.ml.noise.reviewers import (
    MIN_REVIEWS,
    TOO_FEW_REVIEWS,
    contenders,
    corrections,
    fit_reviewer_model,
    rerank,
    reviewer_features,
)
from active_learning.ml.noise.views import (
    SIGNALS,
    VIEWS,
    auxiliary_views,
    combine_views,
    contender_score,
    detect_label_issues,
)


def test_neighbour_votes_known_answer() -> None:
    """Votes are the similarity-weighted labels of the k nearest others, never the case itself."""
    X = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [-1.0, 0.0]])
    labels = np.array([0, 1, 1, 0])
    votes = neighbour_label_votes(X, labels, n_classes=2, k=2)
    # Row 0's nearest others: row 1 (cos 0.8) and row 2 (cos 0.6), both class 1.
    assert votes[0, 1] == pytest.approx(1.0, abs=1e-3)
    # Row 1: row 2 (0.96, class 1) and row 0 (0.8, class 0).
    assert votes[1] == pytest.approx([0.8 / 1.76, 0.96 / 1.76], abs=1e-3)
    # Row 3's neighbours have negative cosine: they weigh 0, leaving the smoothing prior.
    assert votes[3] == pytest.approx([0.5, 0.5])
    assert np.allclose(votes.sum(axis=1), 1.0)


def test_neighbour_votes_flag_a_planted_error_in_a_cluster() -> None:
    """A case labelled unlike its whole cluster has the highest disagreement, also sampled."""
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8) * 5
    y = np.repeat(np.arange(3), 40)
    X = centres[y] + rng.normal(0, 0.5, size=(120, 8))
    noisy = y.copy()
    noisy[7] = 2
    for max_reference in (1000, 60):
        votes = neighbour_label_votes(X, noisy, n_classes=3, k=5, max_reference=max_reference)
        disagreement = 1 - votes[np.arange(120), noisy]
        assert disagreement.argmax() == 7
        assert votes[7].argmax() == 0


def test_only_voters_vote() -> None:
    """Cases left out of the voters are never anyone's neighbour; the rest still give k votes."""
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = np.array([0, 1, 1, 1])
    votes = neighbour_label_votes(X, labels, n_classes=2, k=1, voters=np.array([1, 0, 1, 1]) > 0)
    # Row 0's nearest case, row 1, does not vote: its nearest voter is row 3 (class 1).
    assert votes[0].argmax() == 1
    # Row 1 still gets its nearest voter, row 0.
    assert votes[1].argmax() == 0


def test_lexical_view_learns_words_the_labels_follow() -> None:
    """Out of fold, a text whose words belong to another class gets that class."""
    words = [["refund", "returned", "money back"], ["card", "pin", "atm"]]
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    texts = [f"my {rng.choice(words[c])} question {i}" for i, c in enumerate(labels)]
    noisy = labels.copy()
    noisy[[3, 40]] = [1, 0]
    proba = lexical_out_of_fold_proba(texts, noisy, n_classes=2, random_state=0)
    assert proba.shape == (60, 2) and np.allclose(proba.sum(axis=1), 1)
    disagreement = 1 - proba[np.arange(60), noisy]
    assert set(np.argsort(-disagreement)[:2].tolist()) == {3, 40}
    assert lexical_features(texts).shape[0] == 60


def _probas(n: int = 200, n_classes: int = 4, seed: int = 0) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    # Every probability at least 0.1, so a planted 0.02 is the lowest.
    return labels, [0.6 * rng.dirichlet(np.ones(n_classes), size=n) + 0.1 for _ in VIEWS]


@pytest.mark.parametrize("combine", ["geometric", "rank", "mean"])
def test_combination_is_invariant_to_row_order(combine: str) -> None:
    """Permuting the rows permutes every output the same way."""
    labels, probas = _probas()
    perm = np.random.default_rng(1).permutation(labels.size)
    a = combine_views(labels, probas, combine=combine)
    b = combine_views(labels[perm], [p[perm] for p in probas], combine=combine)
    for field in ("score", "flagged", "suggested", "suggested_p", "agrees", "signals"):
        assert np.allclose(getattr(a, field)[perm], getattr(b, field)), field


def test_combination_ranks_a_case_all_views_doubt_first() -> None:
    """A case every view gives low probability for its label tops the combined score; the
    suggestion is the class the views agree on, with the views named."""
    labels, probas = _probas()
    for p in probas:
        p[5] = [0.02, 0.02, 0.94, 0.02]
    labels[5] = 0
    d = combine_views(labels, probas)
    # contender_score: (0.94 + 0.01) / (0.94 + 0.02 + 2 * 0.01)
    assert d.score.argmax() == 5 and d.score[5] == pytest.approx(0.95 / 0.98)
    assert combine_views(labels, probas, combine="rank").score[5] == pytest.approx(1.0)
    assert d.suggested[5] == 2 and d.suggested_p[5] == pytest.approx(0.94)
    assert d.agreeing_views(5) == list(VIEWS)
    assert d.signals.shape == (labels.size, len(SIGNALS))
    assert d.flagged[5]


def test_contender_score_ranks_a_clear_alternative_above_an_unclear_case() -> None:
    """A label a clear alternative beats outranks one doubted only because the case is unclear,
    though self-confidence ranks them the other way; level contenders score 0.5."""
    proba = np.array(
        [
            [0.40, 0.60, 0.00, 0.00, 0.00],  # the given class 0 beaten by class 1
            [0.30, 0.175, 0.175, 0.175, 0.175],  # unclear: no class beats the given label
            [0.50, 0.50, 0.00, 0.00, 0.00],
        ]
    )
    labels = np.array([0, 0, 0])
    score = contender_score(proba, labels)
    assert score[0] > score[1] and 1 - proba[0, 0] < 1 - proba[1, 0]
    assert score[0] == pytest.approx(0.61 / 1.02)
    assert score[2] == pytest.approx(0.5)
    assert np.all((score > 0) & (score < 1))


def test_detector_is_seeded_and_beats_one_view_on_two_view_noise() -> None:
    """Same seed, same result; with errors each view sees only half of, the combination ranks
    them better than the embedding view alone."""
    X, texts, noisy, truth, n_classes = _two_view_world()
    a = detect_label_issues(X, texts, noisy, n_classes=n_classes, seed=4, k=5)
    b = detect_label_issues(X, texts, noisy, n_classes=n_classes, seed=4, k=5)
    assert np.array_equal(a.score, b.score) and np.array_equal(a.flagged, b.flagged)
    combined_ap = average_precision_score(truth, a.score)
    embedding_ap = average_precision_score(truth, 1 - a.signals[:, 0])
    assert combined_ap >= embedding_ap
    assert combined_ap > 0.9


def test_neighbour_votes_of_queried_rows_equal_their_full_votes() -> None:
    """Asking for some rows gives exactly their rows of the full result, in the order asked."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 5))
    labels = rng.integers(0, 3, 300)
    voters = rng.random(300) > 0.2
    full = neighbour_label_votes(X, labels, n_classes=3, k=4, max_reference=120, voters=voters)
    asked = np.array([299, 0, 17, 150, 151])
    some = neighbour_label_votes(
        X, labels, n_classes=3, k=4, max_reference=120, voters=voters, queries=asked
    )
    assert np.array_equal(some, full[asked])


def test_auxiliary_views_check_only_the_most_doubted_cases_above_the_cap() -> None:
    """Above max_rows the neighbour and wording views judge only the cases the embedding view
    doubts most; the others keep the embedding view's verdict, and only the checked cases and a
    sample of context are read."""
    X, texts, noisy, _, n_classes = _two_view_world()
    mask, proba = find_label_issues_iterative(
        X, noisy, n_classes=n_classes, rounds=2, filter_by="both", random_state=0
    )
    asked: list[int] = []

    def texts_of(rows: np.ndarray) -> list[str]:
        asked.extend(rows.tolist())
        return [texts[i] for i in rows]

    votes, lexical, checked = auxiliary_views(
        X,
        texts_of,
        noisy,
        n_classes=n_classes,
        embedding_proba=proba,
        embedding_mask=mask,
        max_rows=40,
    )
    given = proba[np.arange(noisy.size), noisy]
    assert checked.sum() == 40
    assert given[checked].max() <= given[~checked].min()
    assert np.array_equal(votes[~checked], proba[~checked])
    assert np.array_equal(lexical[~checked], proba[~checked])
    assert not np.array_equal(votes[checked], proba[checked])
    assert set(asked) >= set(np.flatnonzero(checked).tolist())
    d = combine_views(noisy, [proba, votes, lexical], checked=checked)
    # An unchecked case: the combination is the embedding view's (up to the combination's floor
    # of 1e-4 on a class), and no other view agrees.
    assert np.allclose(d.pred_probs[~checked], proba[~checked], atol=1e-3)
    assert not d.agrees[~checked, 1:].any()
    capped = detect_label_issues(X, texts, noisy, n_classes=n_classes, seed=0, k=5, max_rows=40)
    unchecked = contender_score(proba[~checked], noisy[~checked])
    assert np.allclose(capped.score[~checked], unchecked, atol=1e-3)


def _two_view_world() -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, int]:
    """180 cases of 3 classes, 30 labels flipped: embeddings, texts, noisy labels, truth."""
    rng = np.random.default_rng(3)
    n_classes, per = 3, 60
    y = np.repeat(np.arange(n_classes), per)
    X = np.eye(n_classes, 6)[y] * 3 + rng.normal(0, 1.0, size=(y.size, 6))
    vocab = [["alpha", "apple"], ["bravo", "banana"], ["charlie", "cherry"]]
    texts = [f"{rng.choice(vocab[c])} {rng.choice(vocab[c])} note" for c in y]
    noisy = y.copy()
    flip = rng.choice(y.size, 30, replace=False)
    noisy[flip] = (y[flip] + 1) % n_classes
    return X, texts, noisy, noisy != y, n_classes


def test_detector_rejects_misaligned_texts() -> None:
    with pytest.raises(NoiseError):
        detect_label_issues(np.zeros((3, 2)), ["a"], np.array([0, 1, 0]), n_classes=2)


def _review_simulation(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Issues whose truth follows the lexical signal and the class, while the unsupervised
    score mostly follows the embedding signal: what a project's reviews would reveal."""
    rng = np.random.default_rng(seed)
    n, n_classes = 1200, 4
    labels = rng.integers(0, n_classes, n)
    emb, lex = rng.random(n), rng.random(n)
    logit = 4 * (0.5 - lex) + 2.0 * (labels == 1) - 1.0
    wrong = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    score = 0.8 * (1 - emb) + 0.2 * (1 - lex)
    signals = np.column_stack([emb, emb - 0.5, rng.random(n), lex, lex - 0.5, score])
    return signals, labels, wrong, score


def test_learning_from_reviews_improves_the_ranking_of_the_rest() -> None:
    """With 100 reviews as truth, the re-ranked remaining issues have a higher AP than the
    unsupervised score, and the cross-validated AP reflects the learnt signal."""
    signals, labels, wrong, score = _review_simulation(0)
    features = reviewer_features(signals, labels, n_classes=4)
    reviewed = np.random.default_rng(1).choice(labels.size, 100, replace=False)
    rest = np.setdiff1d(np.arange(labels.size), reviewed)
    model, cv_ap = fit_reviewer_model(features[reviewed], wrong[reviewed], seed=0)
    before = average_precision_score(wrong[rest], score[rest])
    after = average_precision_score(wrong[rest], rerank(model, features[rest]))
    assert after >= before + 0.1
    assert cv_ap > average_precision_score(wrong[reviewed], score[reviewed])
    again = fit_reviewer_model(features[reviewed], wrong[reviewed], seed=0)
    assert again[1] == cv_ap


def test_corrections_count_flagged_cases_by_label_and_contender() -> None:
    proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.1, 0.7], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4]])
    labels = np.array([0, 0, 1, 2])
    contender = contenders(proba, labels)
    assert contender.tolist() == [1, 2, 0, 0]  # never the label itself, even when it leads
    proposed = corrections(labels, contender, np.array([True, True, False, True]), n_classes=3)
    assert proposed.pairs.tolist() == [[0, 1, 1], [0, 0, 0], [1, 0, 0]]
    assert proposed.sizes.tolist() == [2, 1, 1]
    features = reviewer_features(
        np.zeros((4, 2)), labels, n_classes=3, contender=contender, proposed=proposed
    )
    # class flagged share, pair share, log(1 + pair count)
    np.testing.assert_allclose(features[:, -3:-1], [[1.0, 0.5], [1.0, 0.5], [0.0, 0.0], [1, 1]])
    np.testing.assert_allclose(features[:, -1], np.log1p([1, 1, 0, 1]))
    # A counted row leaves its own flag out: it sees only the other cases sharing its correction.
    alone = reviewer_features(
        np.zeros((4, 2)),
        labels,
        n_classes=3,
        contender=contender,
        proposed=proposed,
        counted=np.array([True, False, False, True]),
    )
    np.testing.assert_allclose(alone[:, -3:-1], [[0.5, 0.0], [1.0, 0.5], [0.0, 0.0], [0, 0]])


def test_reviews_learn_that_a_correction_many_flags_share_is_a_real_error() -> None:
    """Real errors are one mistake made many times (label 0 filed for class 1), false flags
    scatter over the other corrections, and the views' signals cannot tell them apart: 100
    reviews teach the model how common a correction is, and it ranks the rest far better."""
    rng = np.random.default_rng(3)
    n, n_classes = 1500, 8
    labels = rng.integers(0, n_classes, n)
    wrong = rng.random(n) < 0.3
    labels[wrong] = 0
    contender = np.where(wrong, 1, (labels + rng.integers(1, n_classes, n)) % n_classes)
    contender[~wrong & (contender == 1) & (labels == 0)] = 2
    signals = rng.random((n, len(SIGNALS)))  # no signal at all in the views
    proposed = corrections(labels, contender, np.ones(n, bool), n_classes=n_classes)
    reviewed = rng.choice(n, 100, replace=False)
    rest = np.setdiff1d(np.arange(n), reviewed)
    truth = wrong.astype(int)
    ap = {}
    for name, kwargs in (("plain", {}), ("common", {"contender": contender, "proposed": proposed})):
        features = reviewer_features(signals, labels, n_classes=n_classes, **kwargs)
        model, _ = fit_reviewer_model(features[reviewed], truth[reviewed], seed=0)
        ap[name] = average_precision_score(truth[rest], rerank(model, features[rest]))
    # The class alone (label 0) already helps; the shared correction pins the errors down.
    assert ap["common"] >= ap["plain"] + 0.15
    assert ap["common"] > 0.9


def test_reviewer_model_needs_enough_reviews_of_both_kinds() -> None:
    features = np.random.default_rng(0).random((MIN_REVIEWS, 3))
    with pytest.raises(NoiseError, match="needs"):
        fit_reviewer_model(features[:-1], np.arange(MIN_REVIEWS - 1) % 2)
    with pytest.raises(NoiseError) as err:
        fit_reviewer_model(features, np.ones(MIN_REVIEWS, dtype=int))
    assert str(err.value) == TOO_FEW_REVIEWS.format(needed=MIN_REVIEWS, n=MIN_REVIEWS)


def test_a_view_that_learnt_nothing_gets_no_weight_and_cannot_veto() -> None:
    """A word model on texts that say nothing of the class predicts the class frequencies: its
    weight falls to about 0 and the embedding view's clear verdict stands; a view as skilled as
    the embedding view keeps its full weight."""
    from active_learning.ml.noise.views import VIEW_WEIGHTS, view_weights

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    sure = np.full((120, 3), 0.05)
    sure[np.arange(120), labels] = 0.9
    prior = np.full((120, 3), 1 / 3)
    noise = rng.dirichlet(np.ones(3) * 50, size=120)  # about the prior, randomly off
    weights = view_weights(labels, [sure, sure, noise])
    base = np.asarray(VIEW_WEIGHTS) / sum(VIEW_WEIGHTS[:2])
    assert weights[2] < 0.02 and np.allclose(weights[:2], base[:2], atol=0.02)
    assert np.allclose(view_weights(labels, [sure, prior, sure])[1], 0.0)
    # The one wrong label: the embedding view is sure of class 1, the useless view of nothing.
    wrong = labels.copy()
    wrong[0] = 1
    emb = sure.copy()
    emb[0] = [0.96, 0.02, 0.02]
    detection = combine_views(wrong, [emb, emb, noise])
    assert detection.flagged[0] and detection.suggested[0] == 0
