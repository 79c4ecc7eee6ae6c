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

# A sentence must be true of the numbers it shows: "torn" only while the two most probable
# classes are this close; past it the model leans to one, and the sentence says what else made
# the pick. Cosine distance from which a case counts as unlike every labelled case.
TORN_MARGIN = 0.2
UNLIKE_DISTANCE = 0.3

# Sentences ------------------------------------------------------------------------------------


def _pair(reason: Mapping[str, Any], names: Sequence[str]) -> list[tuple[str, float]] | None:
    """The reason's two named classes with their probabilities, most probable first."""
    probas = list(reason.get("probas") or ())
    if len(names) < 2 or len(probas) < 2:
        return None
    pairs = [(str(n), float(p)) for n, p in zip(names[:2], probas[:2], strict=True)]
    return sorted(pairs, key=lambda pair: -pair[1])


def is_torn(reason: Mapping[str, Any]) -> bool:
    """Whether the two most probable classes are within `TORN_MARGIN` of each other."""
    probas = sorted((float(p) for p in reason.get("probas") or ()), reverse=True)
    return len(probas) >= 2 and probas[0] - probas[1] < TORN_MARGIN


def _torn(reason: Mapping[str, Any], names: Sequence[str], who: str) -> str | None:
    """ "<who> A (p) and B (q)." when the reason has two named classes this close."""
    pair = _pair(reason, names)
    if pair is None or not is_torn(reason):
        return None
    (a, p), (b, q) = pair
    return f"{who} {a} ({p:.2f}) and {b} ({q:.2f})."


def _leans(
    reason: Mapping[str, Any], names: Sequence[str], who: str, verb: str = "leans"
) -> str | None:
    """ "<who> leans to A (p) over B (q)" (no full stop) when the two classes are far apart."""
    pair = _pair(reason, names)
    if pair is None or is_torn(reason):
        return None
    (a, p), (b, q) = pair
    return f"{who} {verb} to {a} ({p:.2f}) over {b} ({q:.2f})"


def sentence_random(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    return NEUTRAL_REASON


def sentence_uncertainty(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    """Least confidence, margin, entropy: the two classes the model hesitates between, or, when
    it leans to one, that the pick is among the least certain cases left."""
    if is_torn(reason):
        torn = _torn(reason, names, "The model is torn between")
        return "The model is torn between two classes." if blind or torn is None else torn
    why = "picked as one of the least certain cases still to label"
    if len(reason.get("probas") or ()) < 2:
        return "The model is unsure about this case."
    leans = _leans(reason, names, "The model")
    return f"The model leans to one class; {why}." if blind or leans is None else f"{leans}; {why}."


def sentence_committee(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    """Query by committee: the members disagree; the consensus' two classes."""
    if is_torn(reason):
        torn = _torn(reason, names, "The committee's models are torn between")
        if blind or torn is None:
            return "The committee's models are torn between two classes."
        return torn
    leans = _leans(reason, names, "on average they", "lean")
    if blind or leans is None:
        return "The committee's models disagree about this case."
    return f"The committee's models disagree about this case, though {leans}."


def sentence_diversity(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    """Margin with k-means diversity: central to one group of the batch's candidates, and either
    uncertain or unlike every labelled case (`nearest_distance`, cosine)."""
    if "cluster" not in reason:
        return sentence_uncertainty(reason, names, blind)
    batch = "picked so the batch covers different kinds of case"
    if is_torn(reason):
        base = sentence_uncertainty(reason, names, blind)
        return (
            base.removesuffix(".") + ", and it is the most central of one group of similar"
            f" uncertain cases, {batch}."
        )
    distance = reason.get("nearest_distance")
    if isinstance(distance, int | float) and distance >= UNLIKE_DISTANCE:
        if blind:
            return f"Unlike the cases labelled so far; {batch}."
        return (
            f"Unlike the cases labelled so far: the nearest labelled case is {distance:.2f} away"
            f" (cosine distance); {batch}."
        )
    central = f"The most central of one group of similar cases, {batch}"
    leans = _leans(reason, names, "the model")
    return f"{central}." if blind or leans is None else f"{central}; {leans}."


def sentence_density(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    """Entropy weighted by density: uncertain, and typical of the cases still to label.

    The pick is the best product, not the most uncertain case, so the classes are said as the
    model's hesitation (or its lean), with both factors' numbers.
    """
    if "density" not in reason or "uncertainty" not in reason:
        return sentence_uncertainty(reason, names, blind)
    why = "picked for its uncertainty weighted by how typical it is of the cases still to label"
    if blind:
        return f"The model is unsure about this case; {why}."
    torn = _torn(reason, names, "The model hesitates between")
    head = torn.removesuffix(".") if torn else _leans(reason, names, "The model")
    head = head or "The model is unsure about this case"
    measure = str(reason.get("measure") or "entropy").replace("_", " ")
    return (
        f"{head}; {why} ({measure} {reason['uncertainty']:.2f}, density {reason['density']:.2f})."
    )


def sentence_kmeans_medoid(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    size = int(reason.get("cluster_size") or 0)
    if size <= 0:
        return "No model yet: a typical example of a group of similar merchants."
    return f"No model yet: a typical example of a cluster of {size:,} similar merchants."


def sentence_zero_shot(reason: Mapping[str, Any], names: Sequence[str], blind: bool) -> str:
    if names and not blind:
        return f"No model yet: closest to the description of {names[0]}."
    return "No model yet: close to the description of one of the classes."


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
