"""The consensus step of the retrain chain: Dawid-Skene over analysts' labels, agreement, and
adjudication items (DESIGN "Resolution and authority").

Every case with at least one current analyst label takes part; each given-label source (the
import's label-source column: a legacy rule, team or vendor) is one more annotator, so its
estimated confusion matrix is the measured noise of that source, per class. Cases with two or
more analyst labels resolve to the consensus (`labeling.services.consensus`). Cases whose
consensus posterior is below the project's threshold, or whose analysts disagree on a case
touching the prohibited tier, get an adjudication item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np

from active_learning.ml import agreement
from active_learning.ml.consensus import ConsensusResult, dawid_skene
from active_learning.models import LabelIssue
from active_learning.selectors import project_classes
from labeling.models import Case, LabelClass, Project, Tier
from labeling.selectors import gold_results
from labeling.services.adjudication import (
    PROHIBITED,
    UNCERTAIN,
    AdjudicationWanted,
    adjudication_items_refresh,
)
from labeling.services.consensus import (
    MIN_ANALYST_LABELS,
    CaseResult,
    Reliability,
    analyst_labels_current,
    consensus_resolutions_apply,
    consensus_store,
)
from workbench.core.models import Job

ANALYST, SOURCE = "analyst", "source"
PROHIBITED_WEIGHT = 1.6  # a disagreement on a prohibited case is worth more of a reviewer's time
CHUNK = 5000


def consensus_refresh(
    *,
    project: Project,
    job: Job | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Run the consensus step for `project`; returns its counts for the job's result."""
    report = progress or (lambda _f, _m: None)
    rows = np.array(analyst_labels_current(project=project), dtype=np.int64).reshape(-1, 4)
    if rows.shape[0] == 0:
        report(1.0, "no analyst labels yet")
        return {"cases": 0}
    classes = project_classes(project=project)
    index = {c.pk: i for i, c in enumerate(classes)}
    known = np.array([label in index for label in rows[:, 2].tolist()], dtype=bool)
    rows = rows[known]
    # One vote per analyst and case: their latest current label.
    rows = rows[np.argsort(rows[:, 3], kind="stable")]
    latest = {(int(c), int(a)): i for i, (c, a) in enumerate(rows[:, :2].tolist())}
    rows = rows[np.sort(np.fromiter(latest.values(), dtype=np.int64, count=len(latest)))]
    case_ids = np.unique(rows[:, 0])
    # A given label of a class the project no longer has says nothing.
    given = [g for g in _given_labels(case_ids.tolist()) if g[1] in index]
    tasks = np.concatenate([rows[:, 0], np.array([c for c, _, _ in given], dtype=np.int64)])
    annotators: list[tuple[str, Any]] = [(ANALYST, int(a)) for a in rows[:, 1].tolist()]
    annotators += [(SOURCE, source) for _, _, source in given]
    labels = np.array(
        [index[int(label)] for label in rows[:, 2].tolist()]
        + [index[label] for _, label, _ in given],
        dtype=np.int64,
    )
    report(0.1, f"Dawid-Skene over {len(case_ids)} cases, {len(labels)} labels")
    result = dawid_skene(tasks=tasks, annotators=annotators, labels=labels, n_classes=len(classes))
    report(0.6, "storing")
    class_ids = [c.pk for c in classes]
    given_of = {c: lbl for c, lbl, _ in given}
    cases = _case_results(result, rows, class_ids, given_of)
    consensus_store(
        project=project,
        job=job,
        cases=cases,
        reliabilities=_reliabilities(result, class_ids, gold_results(project=project)),
        agreement=_agreement(rows, index, class_ids),
    )
    changed = consensus_resolutions_apply(project=project, cases=cases)
    report(0.8, "adjudication items")
    wanted = _adjudications(project, cases, rows, classes)
    items = adjudication_items_refresh(project=project, wanted=wanted)
    report(1.0, f"{changed} resolutions set, {items['created']} adjudication items")
    return {
        "cases": len(cases),
        "resolutions": changed,
        "adjudication": items,
    }


def _agreement(rows: np.ndarray, index: dict[int, int], class_ids: list[int]) -> dict[str, Any]:
    """Agreement between analysts (never the given-label sources): Krippendorff's alpha over
    all cases, per class pair, and Cohen's kappa per pair of analysts, each with its interval."""
    unit, rater = rows[:, 0], rows[:, 1]
    value = np.array([index[int(v)] for v in rows[:, 2].tolist()], dtype=np.int64)
    k = len(class_ids)
    overall = agreement.alpha_agreement(unit, value, k)
    pairs = agreement.class_pairs(unit, value, k)
    analysts = agreement.analyst_pairs(unit, rater, value, k)
    return {
        "alpha": None if np.isnan(overall.value) else overall.value,
        "alpha_low": None if np.isnan(overall.low) else overall.low,
        "alpha_high": None if np.isnan(overall.high) else overall.high,
        "cases": overall.n,
        "class_pairs": [
            {"a": class_ids[c], "b": class_ids[d], **figure.to_dict()}
            for (c, d), figure in sorted(pairs.items(), key=lambda kv: kv[1].value)
        ],
        "analyst_pairs": [
            {"a": int(a), "b": int(b), **figure.to_dict()}
            for (a, b), figure in sorted(analysts.items())
        ],
    }


def _given_labels(case_ids: list[int]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for start in range(0, len(case_ids), CHUNK):
        out += list(
            Case.objects.filter(pk__in=case_ids[start : start + CHUNK], given_label__isnull=False)
            .order_by()
            .values_list("pk", "given_label_id", "given_label_source")
        )
    return out


def _case_results(
    result: ConsensusResult, rows: np.ndarray, class_ids: list[int], given_of: dict[int, int]
) -> list[CaseResult]:
    """One CaseResult per case with analyst labels: the consensus, and what the step saw.

    The consensus picks among the labels the case's analysts gave: the most probable of them
    under Dawid-Skene. Analysts who agree are never overruled by the model of who errs how (a
    given label they all rejected, or a class nobody chose, can win a posterior only through
    estimated error rates); an unsure posterior sends the case to adjudication instead."""
    position = {int(t): i for i, t in enumerate(result.tasks.tolist())}
    column = {label_id: k for k, label_id in enumerate(class_ids)}
    order = np.argsort(rows[:, 0], kind="stable")
    sorted_rows = rows[order]
    bounds = np.flatnonzero(np.diff(sorted_rows[:, 0])) + 1
    out = []
    for group in np.split(sorted_rows, bounds):
        case_id = int(group[0, 0])
        proba = result.proba[position[case_id]]
        given_by_analysts = sorted({int(v) for v in group[:, 2].tolist()})
        label_id = max(given_by_analysts, key=lambda v: float(proba[column[v]]))
        out.append(
            CaseResult(
                case_id=case_id,
                label_id=label_id,
                posterior=float(proba[column[label_id]]),
                given_disagrees=case_id in given_of and given_of[case_id] != label_id,
                analyst_labels=int(group.shape[0]),
                last_annotation_id=int(group[:, 3].max()),
                agreement=round(float(np.mean(group[:, 2] == label_id)), 6),
            )
        )
    return out


def _reliabilities(
    result: ConsensusResult, class_ids: list[int], gold: dict[int, tuple[int, int]]
) -> list[Reliability]:
    """Each annotator's estimate; an analyst's with their answers on gold items (decided cases
    served back) and how many matched the decision."""
    out = []
    for key, estimate in result.annotators.items():
        kind, who = cast(tuple[str, Any], key)
        answered, correct = gold.get(int(who), (0, 0)) if kind == ANALYST else (0, 0)
        confusion = {
            "classes": class_ids,
            "matrix": np.round(np.asarray(estimate.confusion, dtype=float), 4).tolist(),
        }
        out.append(
            Reliability(
                accuracy=float(estimate.accuracy),
                confusion=confusion,
                labels=int(estimate.labels),
                annotator_id=int(who) if kind == ANALYST else None,
                label_source=str(who) if kind == SOURCE else "",
                gold_labels=answered,
                gold_correct=correct,
            )
        )
    return out


def _adjudications(
    project: Project, cases: list[CaseResult], rows: np.ndarray, classes: list[LabelClass]
) -> list[AdjudicationWanted]:
    """Cases with two or more analyst labels whose consensus is unsure, or whose analysts
    disagree on a case touching the prohibited tier."""
    names = {c.pk: str(c) for c in classes}
    prohibited = {c.pk for c in classes if c.tier == Tier.PROHIBITED}
    labels_of: dict[int, set[int]] = {}
    for case_id, _annotator, label_id, _id in rows.tolist():
        labels_of.setdefault(case_id, set()).add(label_id)
    threshold = float(project.consensus_threshold)
    picked: list[tuple[CaseResult, str]] = []
    for c in cases:
        if c.analyst_labels < MIN_ANALYST_LABELS:
            continue
        said = labels_of.get(c.case_id, set())
        if len(said) > 1 and (said | {c.label_id}) & prohibited:
            picked.append((c, PROHIBITED))
        elif c.posterior < threshold:
            picked.append((c, UNCERTAIN))
    issues = {
        row[0]: row[1:]
        for row in LabelIssue.objects.filter(
            case_id__in=[c.case_id for c, _ in picked], suggested_label__isnull=False
        ).values_list("case_id", "suggested_label_id", "suggested_p")
    }
    wanted = []
    for c, why in picked:
        answers = ", ".join(sorted(names.get(lbl, "?") for lbl in labels_of.get(c.case_id, ())))
        consensus = f"{names.get(c.label_id, '?')} at {c.posterior:.2f}"
        if why == PROHIBITED:
            sentence = (
                f"Analysts disagree ({answers}) on a case touching the prohibited tier; "
                f"the consensus is {consensus}."
            )
        else:
            sentence = f"Analysts disagree ({answers}); the consensus is unsure: {consensus}."
        weight = PROHIBITED_WEIGHT if why == PROHIBITED else 1.0
        suggestion = issues.get(c.case_id, (None, None))
        wanted.append(
            AdjudicationWanted(
                case_id=c.case_id,
                why=why,
                sentence=sentence,
                priority=round((1.0 - c.posterior) * weight, 6),
                suggestion_id=suggestion[0],
                suggestion_p=suggestion[1],
            )
        )
    return wanted
