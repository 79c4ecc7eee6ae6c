"""Consensus labels by Dawid-Skene (crowd-kit, Apache-2.0) and the majority-vote baseline.

Input is long-form, one row per label given: ``tasks`` (int case ids), ``annotators`` (hashable
keys such as ``("analyst", 12)`` or ``("source", "rule_b")``) and ``labels`` (class indices
``0..K-1``). A confusion matrix is ``(K, K)``: row = true class, column = label given, rows sum to 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene

__all__ = [
    "BAD_LABELS",
    "BAD_N_CLASSES",
    "BAD_TASKS",
    "DUPLICATE_LABEL",
    "EMPTY_INPUT",
    "LENGTH_MISMATCH",
    "MIN_ROW_SUPPORT",
    "AnnotatorEstimate",
    "ConsensusError",
    "ConsensusResult",
    "dawid_skene",
    "majority_vote",
]

EMPTY_INPUT = "There are no labels to aggregate."
LENGTH_MISMATCH = "tasks, labels (and annotators) must be 1-D of one length, got sizes {sizes}."
BAD_TASKS = "tasks must be integer case ids."
BAD_N_CLASSES = "n_classes must be an integer >= 2, got {value!r}."
BAD_LABELS = "labels must be class indices in 0..{max_class}."
DUPLICATE_LABEL = "Annotator {annotator!r} labelled task {task} more than once; pass one label."

# EM stops when the evidence lower bound per label gains < DEFAULT_TOL (crowd-kit's default):
# 19 iterations on 50,000 simulated cases x 3 labels, 45 on the 3,000 of the tests; estimates
# then move < 0.003 up to 300 iterations. The cap bounds a Celery retrain: one iteration over
# 150,000 labels took 0.15-0.3 s on one core of a loaded 2-core machine: 50 take 8-15 s.
DEFAULT_N_ITER = 50
DEFAULT_TOL = 1e-5

# A confusion row resting on less than this many (posterior-weighted) labels is no evidence:
# crowd-kit leaves it uniform over the labels the annotator happened to use, which would drag a
# prior-weighted accuracy down for anyone who never met a rare class.
MIN_ROW_SUPPORT = 0.5


class ConsensusError(ValueError):
    """The labels cannot be aggregated as given."""


@dataclass(frozen=True, slots=True)
class AnnotatorEstimate:
    """One annotator's estimated quality.

    ``accuracy`` is P(right) under the estimated class priors, ``sum_k prior_k * confusion[k, k]``;
    ``confusion`` is ``(K, K)`` (row = true class, column = label given); ``labels`` is how many
    labels it rests on and ``support`` (K,) how many of them fall in each row (posterior-weighted:
    the expected number of its labels on cases of that true class).
    """

    accuracy: float
    confusion: np.ndarray
    labels: int
    support: np.ndarray


@dataclass(frozen=True, slots=True)
class ConsensusResult:
    """Dawid-Skene consensus over ``n`` tasks and ``K`` classes.

    ``tasks`` (n,) sorted unique ids; ``label`` (n,) the most probable class; ``posterior`` (n,)
    its probability; ``proba`` (n, K) float32; ``priors`` (K,) estimated class shares;
    ``annotators`` maps each annotator key to its ``AnnotatorEstimate``; ``n_iter`` is the number
    of EM iterations run (equal to the cap when it stopped there).
    """

    tasks: np.ndarray
    label: np.ndarray
    posterior: np.ndarray
    proba: np.ndarray
    priors: np.ndarray
    annotators: dict[Hashable, AnnotatorEstimate]
    n_iter: int


def _check(
    tasks: Sequence[int] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    n_classes: int,
    n_annotators: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``tasks`` and ``labels`` as int64 arrays, or ``ConsensusError`` with the reason."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise ConsensusError(BAD_N_CLASSES.format(value=n_classes))
    task_ids, label_ids = np.asarray(tasks), np.asarray(labels)
    sizes = (task_ids.size, label_ids.size) + (() if n_annotators is None else (n_annotators,))
    if len(set(sizes)) != 1 or task_ids.ndim != 1:
        raise ConsensusError(LENGTH_MISMATCH.format(sizes=sizes))
    if label_ids.size == 0:
        raise ConsensusError(EMPTY_INPUT)
    if not np.issubdtype(task_ids.dtype, np.integer):
        raise ConsensusError(BAD_TASKS)
    if (
        label_ids.ndim != 1
        or not np.issubdtype(label_ids.dtype, np.integer)
        or label_ids.min() < 0
        or label_ids.max() >= n_classes
    ):
        raise ConsensusError(BAD_LABELS.format(max_class=n_classes - 1))
    return task_ids.astype(np.int64), label_ids.astype(np.int64)


def _annotator_codes(
    annotators: Sequence[Hashable] | np.ndarray,
) -> tuple[list[Hashable], np.ndarray]:
    """Distinct keys in order of first appearance, and each row's position among them."""
    # Iterated in Python, not np.asarray: a list of tuple keys would become a 2-D array.
    index: dict[Hashable, int] = {}
    codes = np.fromiter(
        (index.setdefault(key, len(index)) for key in annotators),
        dtype=np.int64,
        count=len(annotators),
    )
    return list(index), codes


def dawid_skene(
    *,
    tasks: Sequence[int] | np.ndarray,
    annotators: Sequence[Hashable] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    n_classes: int,
    n_iter: int = DEFAULT_N_ITER,
    tol: float = DEFAULT_TOL,
) -> ConsensusResult:
    """Dawid-Skene consensus labels and per-annotator confusion matrices.

    Dawid & Skene, "Maximum Likelihood Estimation of Observer Error-Rates Using the EM
    Algorithm", JRSS C 28(1), 1979; fitted by ``crowdkit.aggregation.DawidSkene`` (started from
    the majority vote). Every annotator, a person or a source of given labels, gets its own
    full confusion matrix.

    Parameters
    ----------
    tasks : array-like of int, shape (m,)
        Case id of each label.
    annotators : sequence of hashable, length m
        Who gave each label; one label per (task, annotator).
    labels : array-like of int, shape (m,)
        Class index of each label, in ``0..n_classes-1``.
    n_classes : int
        K, the number of classes (classes nobody chose still get a column).
    n_iter : int
        Cap on EM iterations.
    tol : float
        Stop when the evidence lower bound per label improves by less than this.

    Returns
    -------
    ConsensusResult
        An annotator's confusion rows resting on fewer than ``MIN_ROW_SUPPORT`` labels (classes
        it never met, or nobody named) hold no evidence: its accuracy is taken over the other
        rows, and those rows are filled with that accuracy on the diagonal, the rest spread
        evenly.

    Raises
    ------
    ConsensusError
        Empty input, mismatched lengths, labels outside ``0..n_classes-1``, ``n_classes < 2`` or
        an annotator labelling one task twice.
    """
    task_ids, label_ids = _check(tasks, labels, n_classes, len(annotators))
    keys, codes = _annotator_codes(annotators)
    pairs = task_ids * len(keys) + codes
    unique_pairs, first, counts = np.unique(pairs, return_index=True, return_counts=True)
    if unique_pairs.size != pairs.size:
        row = first[np.argmax(counts > 1)]
        raise ConsensusError(
            DUPLICATE_LABEL.format(annotator=keys[codes[row]], task=int(task_ids[row]))
        )

    # crowd-kit wants plain worker names; "w<position>" maps back to keys[position].
    workers = np.array([f"w{i}" for i in range(len(keys))], dtype=object)
    data = pd.DataFrame({"task": task_ids, "worker": workers[codes], "label": label_ids})
    model = DawidSkene(n_iter=n_iter, tol=tol)
    with warnings.catch_warnings():
        # crowd-kit 1.4 calls pandas APIs deprecated for pandas 4 thousands of times per fit.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        model.fit(data)
    assert model.probas_ is not None and model.errors_ is not None and model.priors_ is not None

    classes = np.arange(n_classes)
    task_order = np.unique(task_ids)
    proba = model.probas_.reindex(index=task_order, columns=classes, fill_value=0.0)
    proba_values = proba.to_numpy(dtype=np.float64)
    label = proba_values.argmax(axis=1)
    posterior = proba_values[np.arange(label.size), label]
    priors = model.priors_.reindex(classes, fill_value=0.0).to_numpy(dtype=np.float64)

    # errors_ is indexed by (worker, label given) with one column per true label, holding
    # P(given | true): transposed per worker below, into row = true class.
    errors = model.errors_
    worker_pos = pd.Index(workers).get_indexer(errors.index.get_level_values("worker"))
    given = errors.index.get_level_values("label").to_numpy(dtype=np.int64)
    true = errors.columns.to_numpy(dtype=np.int64)
    stacked = np.zeros((len(keys), n_classes, n_classes))  # [annotator, true, given]
    stacked[worker_pos[:, None], true[None, :], given[:, None]] = errors.to_numpy(np.float64)
    # Posterior-weighted labels per (annotator, true class): the evidence behind each row.
    support = np.zeros((len(keys), n_classes))
    np.add.at(support, codes, proba_values[np.searchsorted(task_order, task_ids)])
    counts_per_annotator = np.bincount(codes, minlength=len(keys))

    estimates: dict[Hashable, AnnotatorEstimate] = {}
    for position, key in enumerate(keys):
        estimates[key] = _estimate(
            stacked[position], support[position], priors, int(counts_per_annotator[position])
        )

    return ConsensusResult(
        tasks=task_order,
        label=label.astype(np.int64),
        posterior=posterior,
        proba=proba_values.astype(np.float32),
        priors=priors,
        annotators=estimates,
        n_iter=len(model.loss_history_),
    )


def _estimate(
    confusion: np.ndarray, support: np.ndarray, priors: np.ndarray, labels: int
) -> AnnotatorEstimate:
    """Accuracy over the rows with evidence; rows without it get that accuracy, one-coin style.

    Filling a row with ``accuracy`` on the diagonal and ``(1 - accuracy) / (K - 1)`` elsewhere
    keeps ``accuracy == priors @ diag(confusion)`` and needs no knowledge of the class.
    """
    evidence = support >= MIN_ROW_SUPPORT
    if not evidence.any():
        evidence = support == support.max()
    weight = priors[evidence].sum()
    diagonal = np.diag(confusion)
    if weight > 0:
        accuracy = float(priors[evidence] @ diagonal[evidence] / weight)
    else:
        accuracy = float(diagonal[evidence].mean())
    empty = np.flatnonzero(~evidence)
    if empty.size:
        confusion[empty] = (1.0 - accuracy) / (confusion.shape[0] - 1)
        confusion[empty, empty] = accuracy
    return AnnotatorEstimate(accuracy=accuracy, confusion=confusion, labels=labels, support=support)


def majority_vote(
    tasks: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """The most frequent label per task, the baseline for ``dawid_skene``.

    Parameters
    ----------
    tasks : array-like of int, shape (m,)
    labels : array-like of int, shape (m,), class indices in ``0..n_classes-1``
    n_classes : int

    Returns
    -------
    (tasks, label) : ndarray (n,), ndarray (n,)
        Sorted unique task ids (the order of ``ConsensusResult.tasks``) and each task's
        majority class, or -1 ("no label") when the top count is tied.
    """
    task_ids, label_ids = _check(tasks, labels, n_classes)
    task_order, row = np.unique(task_ids, return_inverse=True)
    votes = np.zeros((task_order.size, n_classes), dtype=np.int64)
    np.add.at(votes, (row, label_ids), 1)
    label = votes.argmax(axis=1)
    top = votes[np.arange(label.size), label]
    label[(votes == top[:, None]).sum(axis=1) > 1] = -1
    return task_order, label.astype(np.int64)
