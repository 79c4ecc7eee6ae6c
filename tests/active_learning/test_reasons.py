"""Pick reasons are true of their numbers: a property test over generated picks of every kind."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from active_learning.reasons import SENTENCES, TORN_MARGIN, UNLIKE_DISTANCE, pick_reason
from labeling.contracts import NEUTRAL_REASON

NAMES = {11: "Gambling", 12: "Skill games", 13: "Crypto exchange", 14: "Ordinary shop"}
RANDOM_PICKS = {"random", "evaluation", "", "unknown"}
COLD_START = {"kmeans_medoid", "zero_shot"}
TORN = re.compile(r"torn between (.+?) \((\d\.\d\d)\) and (.+?) \((\d\.\d\d)\)")
LEANS = re.compile(r"leans? to (.+?) \((\d\.\d\d)\) over (.+?) \((\d\.\d\d)\)")


@st.composite
def picks(draw):
    """A raw reason as `ml` or the pipeline writes it, with any of the facts a pick may carry."""
    strategy = draw(st.sampled_from([*sorted(SENTENCES), "", "unknown"]))
    raw: dict = {"strategy": strategy}
    if draw(st.booleans()):
        p = draw(st.floats(0.0, 1.0))
        q = draw(st.floats(0.0, min(p, 1.0 - p)))
        first, second = draw(st.permutations([0, 1, 2, 3]))[:2]
        raw["classes"], raw["probas"] = [first, second], [p, q]
        if draw(st.booleans()):  # some writers give the pair least probable first
            raw["classes"].reverse()
            raw["probas"].reverse()
    if draw(st.booleans()):
        raw["score"] = draw(st.floats(0.0, 2.0))
    if draw(st.booleans()):
        raw["cluster"] = draw(st.integers(0, 20))
    if draw(st.booleans()):
        raw["nearest_distance"] = draw(st.floats(0.0, 2.0))
    if draw(st.booleans()):
        raw["uncertainty"] = draw(st.floats(0.0, 3.0))
        raw["density"] = draw(st.floats(0.0, 1.0))
        raw["measure"] = draw(st.sampled_from(["entropy", "margin", "least_confidence"]))
    if draw(st.booleans()):
        raw["cluster_size"] = draw(st.integers(1, 100_000))
    if draw(st.booleans()):
        raw["keyword"] = draw(st.sampled_from(["poker", "casino", "bet"]))
    return raw


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d[\d,]*(?:\.\d+)?", text)


@settings(max_examples=800, deadline=None)
@given(raw=picks())
def test_every_sentence_is_true_of_its_numbers(raw) -> None:
    """ "Torn" only within the margin, "leans to" only past it and toward the more probable
    class, "unlike the cases labelled" only far from them, every number shown is the pick's own,
    random picks say so and nothing else does, and blind sentences carry no names or
    probabilities."""
    reason = pick_reason(raw, class_ids=list(NAMES), names=NAMES)
    said, blind = reason.sentence, reason.sentence_blind
    probas = dict(zip((NAMES[c] for c in reason.class_ids), reason.probas, strict=True))
    gap = abs(reason.probas[0] - reason.probas[1]) if len(reason.probas) == 2 else None
    facts = reason.details | {"score": reason.score}

    for text in (said, blind):
        if "torn between" in text:
            assert gap is not None and gap < TORN_MARGIN, (raw, text)
        if re.search(r"leans? to", text):
            assert gap is not None and gap >= TORN_MARGIN, (raw, text)
        if "Unlike the cases labelled so far" in text:
            assert facts["nearest_distance"] >= UNLIKE_DISTANCE, (raw, text)
        assert ("Drawn at random" in text) == (reason.strategy in RANDOM_PICKS), (raw, text)
        assert text.startswith("No model yet") == (reason.strategy in COLD_START), (raw, text)
    if (m := TORN.search(said)) is not None:
        a, pa, b, pb = m.groups()
        assert (f"{probas[a]:.2f}", f"{probas[b]:.2f}") == (pa, pb) and probas[a] >= probas[b]
    if (m := LEANS.search(said)) is not None:
        a, pa, b, pb = m.groups()
        assert (f"{probas[a]:.2f}", f"{probas[b]:.2f}") == (pa, pb) and probas[a] > probas[b]
    # Every number in the sentence is one of the pick's own, as shown.
    own = {f"{p:.2f}" for p in reason.probas}
    own |= {f"{v:.2f}" for v in facts.values() if isinstance(v, float)}
    if "cluster_size" in facts:
        own.add(f"{int(facts['cluster_size']):,}")
    assert set(_numbers(said)) <= own, (raw, said)
    # Blind: no class names and none of the model's numbers (a cluster's size is not one).
    assert not re.search(r"\d\.\d", blind), (raw, blind)
    assert not any(n in blind for n in NAMES.values()), (raw, blind)
    if reason.strategy in RANDOM_PICKS:
        assert said == blind == NEUTRAL_REASON


def test_a_confident_pick_is_never_called_torn() -> None:
    """The case from the issue: 1.00 against 0.00 is a lean, with what really made the pick."""
    raw = {"strategy": "margin", "classes": [1, 0], "probas": [1.0, 0.0]}
    reason = pick_reason(raw, class_ids=list(NAMES), names=NAMES)
    assert reason.sentence == (
        "The model leans to Skill games (1.00) over Gambling (0.00); picked as one of the least"
        " certain cases still to label."
    )
    assert reason.sentence_blind == (
        "The model leans to one class; picked as one of the least certain cases still to label."
    )
    diverse = {**raw, "strategy": "diversity", "cluster": 2, "nearest_distance": 0.4123}
    assert pick_reason(diverse, class_ids=list(NAMES), names=NAMES).sentence == (
        "Unlike the cases labelled so far: the nearest labelled case is 0.41 away (cosine"
        " distance); picked so the batch covers different kinds of case."
    )
    near = {**diverse, "nearest_distance": 0.05}
    assert pick_reason(near, class_ids=list(NAMES), names=NAMES).sentence == (
        "The most central of one group of similar cases, picked so the batch covers different"
        " kinds of case; the model leans to Skill games (1.00) over Gambling (0.00)."
    )
    evaluation = {**raw, "strategy": "random"}
    assert pick_reason(evaluation, class_ids=list(NAMES), names=NAMES).sentence == NEUTRAL_REASON
