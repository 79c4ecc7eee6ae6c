"""Pick reasons in words: each strategy's sentence, and `pick_reason`, which makes the
`labeling.contracts.PickReason` a queue item stores from `ml`'s raw reason.

Light on purpose (numpy and labeling only): a web process writes reasons when it tops up the
queue from stored scores, and must not load scikit-learn for it. The strategies themselves, and
which sentence each uses, are registered in `active_learning.strategies`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from labeling.contracts import NEUTRAL_REASON, PickReason
from labeling.models import LabelClass

# (raw reason with plain values, names of its classes in order, blind) -> sentence
SentenceFn = Callable[[Mapping[str, Any], Sequence[str], bool], str]

# Sentences ------------------------------------------------------------------------------------


def _torn(reason: Mapping[str, Any], names: Sequence[str], who: str) -> str | None:
    """The sentence "<who> A (p) and B (q)." when the reason has two named classes."""
    probas = list(reason.get("probas") or ())
    if len(names) < 2 or len(probas) < 2:
        return None
    return f"{who} {names[0]} ({probas[0]:.2f}) and {names[1]} ({probas[1]:.2f})."


def sentence_random(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    return NEUTRAL_REASON


def sentence_uncertainty(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    """Least confidence, margin, entropy: the two classes the model hesitates between."""
    torn = _torn(reason, names, "The model is torn between")
    if torn is None:
        return "The model is unsure about this case."
    return "The model is torn between two classes." if blind else torn


def sentence_committee(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    """Query by committee: the members disagree; the consensus' two classes."""
    torn = _torn(reason, names, "The committee's models are torn between")
    if torn is None:
        return "The committee's models disagree about this case."
    return "The committee's models are torn between two classes." if blind else torn


def sentence_diversity(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    """Margin with k-means diversity: uncertain, and central to one group of the batch."""
    base = sentence_uncertainty(reason, names, blind)
    if "cluster" not in reason:
        return base
    return (
        base.removesuffix(".") + ", and it is the most central of one group of similar uncertain"
        " cases, picked so the batch covers different kinds of case."
    )


def sentence_density(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    """Entropy weighted by density: uncertain, and typical of the cases still to label.

    The pick is the best product, not the most uncertain case, so the classes are said as the
    model's hesitation, with both factors' numbers.
    """
    if "density" not in reason or "uncertainty" not in reason:
        return sentence_uncertainty(reason, names, blind)
    why = "picked for its uncertainty weighted by how typical it is of the cases still to label"
    if blind:
        return f"The model is unsure about this case; {why}."
    torn = _torn(reason, names, "The model hesitates between")
    head = torn.removesuffix(".") if torn else "The model is unsure about this case"
    measure = str(reason.get("measure") or "entropy").replace("_", " ")
    return (
        f"{head}; {why} ({measure} {reason['uncertainty']:.2f}, density {reason['density']:.2f})."
    )


def sentence_kmeans_medoid(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    size = int(reason.get("cluster_size") or 0)
    return f"A typical example of a cluster of {size:,} similar merchants."


def sentence_zero_shot(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    if names and not blind:
        return f"Closest to the description of {names[0]}."
    return "Close to the description of one of the classes."


def sentence_keyword_seed(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    keyword = reason.get("keyword")
    if keyword and not blind:  # a keyword can give the class away
        return f'Mentions "{keyword}", a keyword from the class guidelines.'
    return "Mentions a keyword from the class guidelines."


def sentence_example_neighbour(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    return "Close to an example in the class guidelines."


# Each strategy's and each other pick's sentence, by the reason's `strategy`.
SENTENCES: dict[str, SentenceFn] = {
    "random": sentence_random,
    "least_confidence": sentence_uncertainty,
    "margin": sentence_uncertainty,
    "entropy": sentence_uncertainty,
    "committee": sentence_committee,
    "diversity": sentence_diversity,
    "density": sentence_density,
    "kmeans_medoid": sentence_kmeans_medoid,
    "zero_shot": sentence_zero_shot,
    "keyword_seed": sentence_keyword_seed,
    "example_neighbour": sentence_example_neighbour,
    "evaluation": sentence_random,
}

# Reasons --------------------------------------------------------------------------------------

_OWN_KEYS = {"strategy", "score", "classes", "class_ids", "probas"}


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars become Python ones, floats keep 4 places."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def pick_reason(
    raw: Mapping[str, Any], *, class_ids: Sequence[int], names: Mapping[int, str]
) -> PickReason:
    """The stored reason of one pick, from `ml`'s raw reason.

    `class_ids[i]` is the LabelClass id of class index i (the model's column order); `names`
    maps LabelClass ids to the names shown. A raw reason may carry `classes` (indices) or,
    already translated, `class_ids`.
    """
    strategy = str(raw.get("strategy") or "")
    if "classes" in raw:
        ids = tuple(int(class_ids[int(i)]) for i in raw["classes"])
    else:
        ids = tuple(int(c) for c in raw.get("class_ids") or ())
    probas = tuple(round(float(p), 4) for p in raw.get("probas") or ())
    score = float(raw["score"]) if raw.get("score") is not None else None
    details = {str(k): _plain(v) for k, v in raw.items() if k not in _OWN_KEYS}
    facts = {**details, "strategy": strategy, "score": score, "probas": probas}
    shown = [names.get(c, "") for c in ids]
    shown = shown if all(shown) else []
    sentence_fn = SENTENCES.get(strategy, sentence_random)
    return PickReason(
        strategy=strategy,
        sentence=sentence_fn(facts, shown, False),
        sentence_blind=sentence_fn(facts, shown, True),
        score=score,
        class_ids=ids,
        probas=probas,
        details=details,
    )


def class_names(classes: Sequence[LabelClass]) -> dict[int, str]:
    """LabelClass id -> the name a card shows (`display_name`, else `name`)."""
    return {int(c.pk): c.display_name or c.name for c in classes}
