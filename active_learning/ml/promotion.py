"""The promotion rule (DESIGN "Champion vs challenger"): two evaluation reports in, a decision out.

Promote when macro-F1 >= champion - 0.005 and the prohibited tier's recall >= champion - 0.01,
and at least one is better; a higher macro-F1 counts only when it is higher in F1_CONFIDENCE
of paired bootstrap replicates of the same labels. Where macro-F1 is not lower at all, a
per-class log loss (from both models' probabilities) lower in LOSS_CONFIDENCE of them counts as
better too. The recall guard is paired
(`active_learning.ml.paired`): both models on the same labels, at the precision the champion
reaches there, so it acts from the first few prohibited labels; it blocks only when the
challenger is worse by more than the tolerance in at least GUARD_CONFIDENCE of the paired
bootstrap replicates, and is skipped with fewer than 5 prohibited labels. Without a paired
guard, the reports' recall at the target precision is compared where both prove it.

Fewer than 2 evaluation labels per class, or 50 in all, is not enough evidence for this rule.
Then the warm-up rule (`decide_warmup`) judges both on labels that sample the population: the
pool probe's (a uniform random share of the pool picks, `active_learning.ml.pool_probe`), each
side refitted out of fold (`active_learning.ml.crossfit`), and the evaluation labels there are,
with the same tolerances; its promotions are marked provisional. Fewer than MIN_WARMUP_LABELS
of those keep the champion: the strategy's own picks are never scored (they are the cases the
model found hardest, not the population). Without that comparison either, a challenger is promoted only over no champion.
The decision names the metrics, the labels and the values. Pure: both reports must come from the
same labels; the caller scores and records.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from active_learning.ml.metrics import EvaluationReport
from active_learning.ml.paired import PairedF1, PairedRecall

F1_TOLERANCE = 0.005
RECALL_TOLERANCE = 0.01
MIN_EVAL_LABELS = 50
MIN_EVAL_PER_CLASS = 2
GUARDED_TIER = "prohibited"
GUARD_CONFIDENCE = 0.8  # share of paired replicates in which the challenger must be worse
# Probe and evaluation labels together that a cross-fitted warm-up comparison needs.
MIN_WARMUP_LABELS = 30
# A higher macro-F1 counts as better only when it is higher in this share of paired resamples of
# the labels both were judged on: a few hundred labels over 20 classes are noisy (in the loop
# benchmark a bare point difference swapped in champions 0.011 worse on the test split; at 70%
# drops above 0.01 still happen, fewer).
F1_CONFIDENCE = 0.7
# A challenger whose per-class log loss is lower in this share of paired resamples (macro-F1
# not lower) is better: every label weighs in a log loss, where a macro-F1 moves only on the few
# cases whose top class changes, so at the default weight challengers 0.005-0.014 better on the
# test split never showed it in macro-F1 on 100-300 evaluation labels, and v1 stayed champion.
LOSS_CONFIDENCE = 0.8
# Likewise a higher prohibited-tier recall, where the paired guard measured it: one more of 19
# prohibited cases found is a higher point value, not evidence.
RECALL_CONFIDENCE = 0.7

# `PromotionDecision.metric`: the metric that kept the champion, or why there was no comparison.
METRIC_EVIDENCE = "evidence"
METRIC_MACRO_F1 = "macro_f1"
METRIC_RECALL = "prohibited_recall"
METRIC_CHAMPION_UNUSABLE = "champion_unusable"

REASON_NO_CHAMPION = "promoted: there is no champion yet"
REASON_NO_EVIDENCE = (
    "kept champion v{champion}: not enough evidence ({n} evaluation labels, {short} classes "
    "with fewer than {per_class}; {needed} and {per_class} per class needed)"
)
REASON_F1_WORSE = "kept champion v{champion}: macro-F1 {new:.4f} < champion {old:.4f} - {tol}"
REASON_RECALL_WORSE = (
    "kept champion v{champion}: prohibited-tier recall at precision {target} {new:.4f} < "
    "champion {old:.4f} - {tol}"
)
LOSS_SHOWN = ", per-class log loss ({new:.4f} vs {old:.4f})"
REASON_NOT_BETTER = (
    "kept champion v{champion}: neither macro-F1 ({new:.4f} vs {old:.4f}){loss} nor "
    "prohibited-tier recall at precision {target} ({new_recall} vs {old_recall}) is surely better"
)
REASON_BETTER = (
    "promoted over v{champion}: macro-F1 {new:.4f} vs {old:.4f}; prohibited-tier recall at "
    "precision {target} {new_recall} vs {old_recall}"
)
REASON_BETTER_LOSS = (
    "promoted over v{champion}: per-class log loss {new_loss:.4f} vs {old_loss:.4f}, lower in "
    "{p_loss:.0%} of paired resamples; macro-F1 not lower ({new:.4f} vs {old:.4f}); "
    "prohibited-tier recall at precision {target} {new_recall} vs {old_recall}"
)
REASON_RECALL_WORSE_PAIRED = (
    "kept champion v{champion}: prohibited-tier recall at the champion's precision {level:.3f} "
    "{new:.4f} < champion {old:.4f} - {tol} (paired, on {positives} prohibited labels; worse in "
    "{p_worse:.0%} of resamples)"
)
EVIDENCE_EVALUATION = "judged on {n} evaluation labels{weighted}"
EVIDENCE_WARMUP = (
    "provisional: evaluation evidence is short ({n_eval} evaluation labels, {short} classes with "
    "fewer than {per_class}), so both were refitted without each of {folds} folds of {n} "
    "randomly drawn analysts' pool labels (the pool probe) and judged on the fold they did not "
    "see and on {n_eval_scored} evaluation labels"
)
REASON_WARMUP_SHORT = (
    "kept champion v{champion}: not enough evidence ({n_eval} evaluation labels, {short} classes "
    "with fewer than {per_class}; {needed} and {per_class} per class needed; {n} randomly drawn "
    "analysts' pool labels and {n_eval_scored} evaluation labels, {needed_warmup} together "
    "needed for a provisional comparison)"
)


@dataclass(frozen=True)
class ComparedValues:
    """One side's figures as the decision records them (prohibited recall None: no evidence)."""

    n_samples: int
    macro_f1: float | None
    accuracy: float | None
    ece: float | None
    prohibited_recall: float | None

    @classmethod
    def of(
        cls, report: EvaluationReport, guard: PairedRecall | None = None, *, side: str = ""
    ) -> ComparedValues:
        """`report`'s figures; the prohibited recall is the paired guard's `side` when measured
        (else the report's recall at the target precision, where proven)."""
        recall = report.recall_at_target(GUARDED_TIER)
        if guard is not None:
            recall = getattr(guard, side) if guard.measured else None
        return cls(
            n_samples=report.n_samples,
            macro_f1=report.macro_f1,
            accuracy=report.accuracy,
            ece=report.ece,
            prohibited_recall=recall,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "macro_f1": self.macro_f1,
            "accuracy": self.accuracy,
            "ece": self.ece,
            "prohibited_recall": self.prohibited_recall,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ComparedValues:
        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            n_samples=int(data.get("n_samples", 0)),
            macro_f1=number("macro_f1"),
            accuracy=number("accuracy"),
            ece=number("ece"),
            prohibited_recall=number("prohibited_recall"),
        )


@dataclass(frozen=True)
class PromotionDecision:
    """Promote or keep, in words, with the values compared (what ``ModelVersion.decision`` holds).

    ``metric`` names what kept the champion (``evidence``, ``macro_f1``, ``prohibited_recall``)
    or ``champion_unusable``; None when the challenger won on the metrics or had no champion.
    ``champion`` is None when there was no champion (or it could not be scored); ``challenger``
    is None only when no comparison ran.
    """

    promote: bool
    reason: str
    metric: str | None = None
    challenger: ComparedValues | None = None
    champion: ComparedValues | None = None
    # The warm-up rule decided (on the cross-fitted pool probe's labels), not the evaluation split.
    provisional: bool = False
    guard: PairedRecall | None = None
    basis: str | None = None  # "evaluation" or "cross_fit": the labels both sides were judged on
    # Both sides' macro-F1 (and per-class log loss) on the same resamples, when compared.
    paired_f1: PairedF1 | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored form: the sides, `metric`, the guard and the basis appear only when present."""
        out: dict[str, Any] = {}
        if self.challenger is not None:
            out["challenger"] = self.challenger.to_json()
        if self.champion is not None:
            out["champion"] = self.champion.to_json()
        out["promote"] = self.promote
        out["reason"] = self.reason
        if self.metric is not None:
            out["metric"] = self.metric
        if self.provisional:
            out["provisional"] = True
        if self.guard is not None:
            out["guard"] = self.guard.to_json()
        if self.basis is not None:
            out["basis"] = self.basis
        if self.paired_f1 is not None:
            out["paired_f1"] = self.paired_f1.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PromotionDecision:
        data = data or {}
        sides = {
            side: ComparedValues.from_json(data[side]) if data.get(side) else None
            for side in ("challenger", "champion")
        }
        return cls(
            promote=bool(data.get("promote", False)),
            reason=str(data.get("reason", "")),
            metric=data.get("metric"),
            challenger=sides["challenger"],
            champion=sides["champion"],
            provisional=bool(data.get("provisional", False)),
            guard=PairedRecall.from_json(data.get("guard")),
            basis=data.get("basis"),
            paired_f1=PairedF1.from_json(data.get("paired_f1")),
        )


def _fmt(value: float | None) -> str:
    return "n/a (not enough evidence)" if value is None else f"{value:.4f}"


def decide(
    *,
    challenger: EvaluationReport,
    champion: EvaluationReport | None,
    champion_number: int | None,
    target_precision: float | None,
    guard: PairedRecall | None = None,
    waived: Collection[str] = (),
    paired_f1: PairedF1 | None = None,
) -> PromotionDecision:
    """The decision for two reports measured on the same evaluation labels.

    Parameters
    ----------
    challenger, champion : EvaluationReport
        ``champion`` None when the project has none.
    champion_number : int or None
        The champion's version number, named in the reason.
    target_precision : float or None
        The precision at which the prohibited tier's recall is compared, named in the reason.
    guard : PairedRecall, optional
        The paired prohibited-tier comparison on the same labels; replaces the reports' recall.
    waived : collection of str, optional
        Class ids the evaluation split cannot show MIN_EVAL_PER_CLASS of: not waited for.
    paired_f1 : PairedF1, optional
        Both models' macro-F1 on the same labels, paired, with their per-class log loss when
        measured; without it a bare higher macro-F1 point counts.
    """
    mine = ComparedValues.of(challenger, guard, side="challenger")
    if champion is None:
        return PromotionDecision(
            promote=True, reason=REASON_NO_CHAMPION, challenger=mine, basis="evaluation"
        )
    n, short = challenger.n_samples, challenger.classes_short_of(MIN_EVAL_PER_CLASS, waived)
    if n < MIN_EVAL_LABELS or short or challenger.macro_f1 is None or champion.macro_f1 is None:
        reason = REASON_NO_EVIDENCE.format(
            champion=champion_number, n=n, short=short, per_class=MIN_EVAL_PER_CLASS,
            needed=MIN_EVAL_LABELS,
        )  # fmt: skip
        theirs = ComparedValues.of(champion, guard, side="champion")
        return PromotionDecision(False, reason, METRIC_EVIDENCE, mine, theirs, guard=guard)
    weighted = " (weighted by inclusion probability)" if challenger.weighted else ""
    basis = EVIDENCE_EVALUATION.format(n=n, weighted=weighted)
    return _compare(
        challenger=challenger,
        champion=champion,
        champion_number=champion_number,
        target_precision=target_precision,
        guard=guard,
        basis=basis,
        provisional=False,
        paired_f1=paired_f1,
    )


def evaluation_evidence_short(report: EvaluationReport, waived: Collection[str] = ()) -> bool:
    """Whether `report`'s labels are too few for the main rule (the warm-up rule applies);
    classes in `waived` are not waited for."""
    return (
        report.n_samples < MIN_EVAL_LABELS
        or report.classes_short_of(MIN_EVAL_PER_CLASS, waived) > 0
    )


def decide_warmup(
    *,
    challenger: EvaluationReport,
    champion: EvaluationReport,
    champion_number: int | None,
    target_precision: float | None,
    guard: PairedRecall | None,
    evaluation: EvaluationReport,
    n_folds: int,
    n_labels: int,
    n_classes: int,
    paired_f1: PairedF1 | None = None,
    waived: Collection[str] = (),
    n_evaluation: int = 0,
) -> PromotionDecision:
    """The provisional decision while evaluation evidence is short.

    ``challenger`` and ``champion`` are reports on the same labels: the pool probe's, each side
    predicted out of fold (refitted without the fold), and the `n_evaluation` evaluation labels
    scored beside them; ``evaluation`` is the short evaluation report, named in the reason, as
    are the probe's labels there are (`n_labels`; the reports are empty when too few) and the
    project's `n_classes`. Tolerances and the better clause are the main rule's (`_compare`).
    """
    n = n_labels
    short = (
        max(0, n_classes - len(waived))
        if evaluation.is_empty
        else evaluation.classes_short_of(MIN_EVAL_PER_CLASS, waived)
    )
    total = n + n_evaluation
    if total < MIN_WARMUP_LABELS or challenger.macro_f1 is None or champion.macro_f1 is None:
        reason = REASON_WARMUP_SHORT.format(
            champion=champion_number, n_eval=evaluation.n_samples, short=short,
            per_class=MIN_EVAL_PER_CLASS, needed=MIN_EVAL_LABELS, n=n,
            n_eval_scored=n_evaluation, needed_warmup=MIN_WARMUP_LABELS,
        )  # fmt: skip
        return PromotionDecision(
            False,
            reason,
            METRIC_EVIDENCE,
            ComparedValues.of(challenger, guard, side="challenger"),
            ComparedValues.of(champion, guard, side="champion"),
            guard=guard,
            basis="cross_fit",
        )
    basis = EVIDENCE_WARMUP.format(
        n_eval=evaluation.n_samples, short=short, per_class=MIN_EVAL_PER_CLASS, folds=n_folds,
        n=n, n_eval_scored=n_evaluation,
    )  # fmt: skip
    return _compare(
        challenger=challenger,
        champion=champion,
        champion_number=champion_number,
        target_precision=target_precision,
        guard=guard,
        basis=basis,
        provisional=True,
        paired_f1=paired_f1,
    )


def _compare(
    *,
    challenger: EvaluationReport,
    champion: EvaluationReport,
    champion_number: int | None,
    target_precision: float | None,
    guard: PairedRecall | None,
    basis: str,
    provisional: bool,
    paired_f1: PairedF1 | None = None,
) -> PromotionDecision:
    """The tolerances and the better clause (macro-F1, prohibited recall or log loss), for
    either rule (macro-F1 present)."""
    mine = ComparedValues.of(challenger, guard, side="challenger")
    theirs = ComparedValues.of(champion, guard, side="champion")
    kind = "cross_fit" if provisional else "evaluation"

    def decision(promote: bool, reason: str, metric: str | None) -> PromotionDecision:
        return PromotionDecision(
            promote,
            f"{reason}; {basis}",
            metric,
            mine,
            theirs,
            provisional,
            guard,
            kind,
            paired_f1,
        )

    new_f1, old_f1 = float(challenger.macro_f1 or 0.0), float(champion.macro_f1 or 0.0)
    values: dict[str, Any] = {
        "champion": champion_number,
        "new": new_f1,
        "old": old_f1,
        "target": target_precision,
    }
    if new_f1 < old_f1 - F1_TOLERANCE:
        return decision(False, REASON_F1_WORSE.format(**values, tol=F1_TOLERANCE), METRIC_MACRO_F1)
    new_recall, old_recall = mine.prohibited_recall, theirs.prohibited_recall
    recall_better = False
    if guard is not None and guard.measured:
        difference = float(guard.difference or 0.0)
        if difference < -RECALL_TOLERANCE and (guard.p_worse or 0.0) >= GUARD_CONFIDENCE:
            reason = REASON_RECALL_WORSE_PAIRED.format(
                champion=champion_number, level=guard.precision, new=guard.challenger,
                old=guard.champion, tol=RECALL_TOLERANCE, positives=guard.n_positives,
                p_worse=guard.p_worse,
            )  # fmt: skip
            return decision(False, reason, METRIC_RECALL)
        recall_better = difference > 0 and (guard.p_better or 0.0) >= RECALL_CONFIDENCE
        if difference > 0:
            basis = f"{basis}; prohibited recall higher in {guard.p_better or 0.0:.0%} of paired resamples"
        values["target"] = f"{guard.precision:.3f} (the champion's, paired)"
    elif guard is None and new_recall is not None and old_recall is not None:
        if new_recall < old_recall - RECALL_TOLERANCE:
            reason = REASON_RECALL_WORSE.format(
                champion=champion_number, target=target_precision, new=new_recall,
                old=old_recall, tol=RECALL_TOLERANCE,
            )  # fmt: skip
            return decision(False, reason, METRIC_RECALL)
        recall_better = new_recall > old_recall
    shown = {**values, "new_recall": _fmt(new_recall), "old_recall": _fmt(old_recall)}
    f1_better = new_f1 > old_f1
    loss = paired_f1.loss if paired_f1 is not None else None
    # A lower loss promotes only where macro-F1 is not lower at all: each loss-only promotion
    # may otherwise give up to the tolerance, and successive ones would add up.
    loss_better = (
        loss is not None
        and new_f1 >= old_f1
        and loss.challenger < loss.champion
        and loss.p_better >= LOSS_CONFIDENCE
    )
    if paired_f1 is not None:
        f1_better = f1_better and paired_f1.p_better >= F1_CONFIDENCE
        basis = f"{basis}; macro-F1 higher in {paired_f1.p_better:.0%} of paired resamples"
    shown["loss"] = (
        "" if loss is None else LOSS_SHOWN.format(new=loss.challenger, old=loss.champion)
    )
    if not (f1_better or recall_better or loss_better):
        if loss is not None:
            basis = f"{basis}; log loss lower in {loss.p_better:.0%}"
        return decision(False, REASON_NOT_BETTER.format(**shown), METRIC_MACRO_F1)
    if f1_better or recall_better:
        promoted = REASON_BETTER.format(**shown)
        if loss is not None:
            basis = (
                f"{basis}; per-class log loss {loss.challenger:.4f} vs {loss.champion:.4f}, "
                f"lower in {loss.p_better:.0%}"
            )
    else:
        assert loss is not None
        promoted = REASON_BETTER_LOSS.format(
            **shown, new_loss=loss.challenger, old_loss=loss.champion, p_loss=loss.p_better
        )
    if provisional:
        promoted = "provisionally " + promoted
    return decision(True, promoted, None)
