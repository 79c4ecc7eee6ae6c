"""Query-by-committee over a small bagged committee: vote entropy or KL to the consensus.

``member_proba`` is ``(n_members, n, n_classes)``: each member's stored probabilities for the
same pool rows (a memmap works; it is read chunk by chunk).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from active_learning.ml.strategies._common import (
    BAD_PARAMETER,
    DEFAULT_CHUNK_SIZE,
    UNKNOWN_MEASURE,
    Selection,
    StrategyError,
    available_mask,
    build_selection,
    check_chunk_size,
    check_n_instances,
    chunked_top_k,
    iter_chunks,
)

COMMITTEE_MEASURES = ("vote_entropy", "kl")
_EPS = 1e-12


def _make_estimator(estimator: Any) -> Any:
    if estimator is None:
        return LogisticRegression(C=10.0, max_iter=1000)
    if callable(estimator) and not hasattr(estimator, "fit"):
        return estimator()
    return clone(estimator)


def fit_bagged_committee(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_members: int = 5,
    estimator: Any = None,
    random_state: int | np.random.Generator | None = None,
) -> list[Any]:
    """Fit ``n_members`` estimators on stratified bootstrap samples of the labelled set.

    Bootstrapping within each class keeps every class in every member, so all members share
    ``classes_`` (Breiman 1996, bagging; Abe & Mamitsuka 1998, query by bagging).

    Parameters
    ----------
    X : ndarray of shape (n_labeled, dim)
    y : ndarray of shape (n_labeled,)
    n_members : int
    estimator : sklearn estimator (cloned) or a factory callable, optional
        Default ``LogisticRegression(C=10)``.
    random_state : int, Generator or None

    Returns
    -------
    list of fitted estimators, length n_members
    """
    if n_members < 2:
        raise StrategyError(
            BAD_PARAMETER.format(name="n_members", expected=">= 2", value=n_members)
        )
    y = np.asarray(y)
    rng = np.random.default_rng(random_state)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    members = []
    for _ in range(n_members):
        sample = np.concatenate([rng.choice(g, size=g.size, replace=True) for g in groups])
        members.append(_make_estimator(estimator).fit(X[sample], y[sample]))
    return members


def committee_member_proba(
    members: list[Any], X: np.ndarray, *, n_classes: int, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> np.ndarray:
    """Each member's probabilities, columns aligned to class indices ``0..n_classes-1``.

    Parameters
    ----------
    members : list of fitted classifiers whose ``classes_`` are integer class indices
    X : ndarray of shape (n, dim)
    n_classes : int

    Returns
    -------
    ndarray of shape (n_members, n, n_classes), float32
    """
    out = np.zeros((len(members), X.shape[0], n_classes), dtype=np.float32)
    for m, member in enumerate(members):
        cols = np.asarray(member.classes_, dtype=np.int64)
        for start, stop in iter_chunks(X.shape[0], check_chunk_size(chunk_size)):
            out[m, start:stop][:, cols] = member.predict_proba(X[start:stop])
    return out


def vote_entropy(member_proba: np.ndarray) -> np.ndarray:
    """Entropy of the members' hard votes; higher is more disagreement.

    Source: Dagan & Engelson (1995), "Committee-based sampling for training probabilistic
    classifiers"; Settles (2009), *Active Learning Literature Survey*, §3.2. Same definition as
    modAL's ``vote_entropy`` (natural log).

    Parameters
    ----------
    member_proba : ndarray of shape (n_members, n, n_classes)

    Returns
    -------
    ndarray of shape (n,)
    """
    m, n, k = member_proba.shape
    votes = np.argmax(member_proba, axis=2)  # (m, n)
    counts = np.zeros((n, k), dtype=np.float64)
    np.add.at(counts, (np.tile(np.arange(n), m), votes.ravel()), 1.0)
    share = counts / m
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(share > 0, share * np.log(share), 0.0)
    return np.asarray(-terms.sum(axis=1), dtype=np.float64)


def kl_to_consensus(member_proba: np.ndarray) -> np.ndarray:
    """Mean KL divergence of each member from the committee's consensus; higher is more disagreement.

    Source: McCallum & Nigam (1998), "Employing EM and pool-based active learning for text
    classification"; Settles (2009), §3.2 (modAL's ``KL_max_disagreement`` takes the max instead).

    Parameters
    ----------
    member_proba : ndarray of shape (n_members, n, n_classes)

    Returns
    -------
    ndarray of shape (n,)
    """
    p = np.clip(np.asarray(member_proba, dtype=np.float64), _EPS, None)
    consensus = p.mean(axis=0, keepdims=True)
    return np.asarray((p * (np.log(p) - np.log(consensus))).sum(axis=2).mean(axis=0))


_COMMITTEE_FNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "vote_entropy": vote_entropy,
    "kl": kl_to_consensus,
}


def select_committee(
    member_proba: np.ndarray,
    n_instances: int,
    *,
    measure: str = "vote_entropy",
    exclude: np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    random_state: int | np.random.Generator | None = None,
) -> Selection:
    """Pick the rows the committee disagrees on most.

    Vote entropy takes few distinct values, so its ties are broken by the entropy of the
    consensus (mean) distribution, then at random.

    Parameters
    ----------
    member_proba : ndarray of shape (n_members, n, n_classes)
    n_instances : int
    measure : {"vote_entropy", "kl"}
    exclude : ndarray of shape (n,) bool, or of row indices, optional
    chunk_size : int
    random_state : int, Generator or None

    Returns
    -------
    Selection
        Reasons: ``strategy`` ("committee"), ``measure``, ``score`` (the disagreement), ``rank``,
        ``classes``/``probas`` (top two of the consensus distribution).
    """
    k = check_n_instances(n_instances)
    chunk_size = check_chunk_size(chunk_size)
    try:
        fn = _COMMITTEE_FNS[measure]
    except KeyError:
        raise StrategyError(
            UNKNOWN_MEASURE.format(value=measure, choices=COMMITTEE_MEASURES)
        ) from None
    if member_proba.ndim != 3 or member_proba.shape[0] < 2:
        raise StrategyError(
            BAD_PARAMETER.format(
                name="member_proba",
                expected="of shape (n_members >= 2, n, n_classes)",
                value=member_proba.shape,
            )
        )
    available = available_mask(member_proba.shape[1], exclude)
    rng = np.random.default_rng(random_state)

    def scores_and_consensus(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        block = np.asarray(member_proba[:, start:stop], dtype=np.float64)
        return fn(block), block.mean(axis=0)

    def priority(start: int, stop: int) -> np.ndarray:
        score, consensus = scores_and_consensus(start, stop)
        if measure != "vote_entropy":
            return score
        p = np.clip(consensus, _EPS, None)
        tie_break = -(p * np.log(p)).sum(axis=1) / max(np.log(p.shape[1]), 1.0)
        return score + 1e-6 * tie_break

    picks = chunked_top_k(priority, available, k, chunk_size=chunk_size, rng=rng)
    block = np.asarray(member_proba[:, picks], dtype=np.float64)
    consensus = block.mean(axis=0)
    measure_arr = np.array([measure] * picks.size, dtype=object)
    return build_selection(
        "committee", picks, fn(block), proba_rows=consensus, extra={"measure": measure_arr}
    )
