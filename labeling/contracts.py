"""What the model side hands the labeling side, as typed values (stored as JSON on its rows).

The pipeline (`active_learning`) builds these when it makes a queue item; labeling stores them on
the item and renders them, never asking the model side again. `from_json` reads what an older
version stored, so an item made before a field existed still renders.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

NEUTRAL_REASON = "Drawn at random from the cases still to label."
# The reason details' key of a pool-probe pick (its key): the warm-up judges models on its labels.
PROBE_DETAIL = "pool_probe"


@dataclass(frozen=True)
class PickReason:
    """Why a case is in the queue, as facts and as the sentences the card shows.

    `sentence` may name classes and numbers; `sentence_blind` says the same without them (blind
    projects). `class_ids` are LabelClass ids, best first, with their `probas`; `details` holds
    a strategy's own facts (e.g. `cluster_size`, `nearest_distance`), JSON values only.
    """

    strategy: str
    sentence: str = NEUTRAL_REASON
    sentence_blind: str = NEUTRAL_REASON
    score: float | None = None
    class_ids: tuple[int, ...] = ()
    probas: tuple[float, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["class_ids"], out["probas"] = list(self.class_ids), list(self.probas)
        return out

    @classmethod
    def from_json(cls, data: Any) -> PickReason:
        if isinstance(data, PickReason):
            return data
        if not isinstance(data, dict):
            return cls(strategy="")
        return cls(
            strategy=str(data.get("strategy") or ""),
            sentence=str(data.get("sentence") or NEUTRAL_REASON),
            sentence_blind=str(data.get("sentence_blind") or NEUTRAL_REASON),
            score=float(data["score"]) if isinstance(data.get("score"), int | float) else None,
            class_ids=tuple(int(c) for c in data.get("class_ids") or [] if str(c).isdigit()),
            probas=tuple(float(p) for p in data.get("probas") or []),
            details=dict(data.get("details") or {}),
        )

    def text(self, *, blind: bool) -> str:
        return self.sentence_blind if blind else self.sentence


@dataclass(frozen=True)
class ModelFacts:
    """The deciding model's view of a case when its item was made (None: no model yet).

    `alternatives` are the next classes after the suggestion, as (LabelClass id, probability).
    `model_version_id` is None when the facts are the label-issue detector's (out-of-fold
    models, no model version).
    """

    model_version_id: int | None
    suggestion_id: int | None
    suggestion_p: float | None
    alternatives: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class ChampionSummary:
    """The project's deciding model, as the project list shows it."""

    model_version_id: int
    number: int
    macro_f1: float | None  # None: not measured on evaluation labels yet (still the champion)


@dataclass(frozen=True)
class DecisionSummary:
    """The newest promotion decision, as the project list says it in a sentence.

    `number` is the version decided on (the challenger); `promoted` whether it became champion;
    `reason` the decision in words, as the promotion rule wrote it; `provisional` when the
    warm-up rule decided on analysts' pool labels rather than the evaluation split.
    """

    number: int
    promoted: bool
    reason: str
    provisional: bool = False


@dataclass(frozen=True)
class CaseModelFacts:
    """What the models say of one case, for the reviewers' case page.

    `predictions` and `issue` are rows the page renders as they are (each version's prediction,
    newest first, with `model_version`, `predicted_label`, `confidence` and `top_named`; the
    label issue with `score`, `self_confidence`, `in_prune_set`, `given_label`,
    `suggested_label`, `suggested_p`, `views`, `detected_at`: the case's one label-issue score,
    for pool and evaluation cases alike). `champion` is the deciding model's view.
    """

    predictions: tuple[Any, ...] = ()
    issue: Any = None
    champion: ModelFacts | None = None


def detection_view_words(views: Any) -> tuple[str, ...]:
    """A label issue's `views` (the detection views' names that flag it, e.g.
    `confident_learning`) as words for people; anything but a list of names gives none."""
    if not isinstance(views, list | tuple):
        return ()
    return tuple(str(v).replace("_", " ") for v in views if isinstance(v, str) and v)


@dataclass(frozen=True)
class ReviewFacts:
    """The label-issue detector's latest view of a case's label, for a review item.

    `score` is how likely the label is wrong (1 - its out-of-fold probability); `suggestion_id`
    the out-of-fold argmax with its probability `suggestion_p`; `group` the near-duplicate cases
    (cosine >= the detector's threshold) with the same given label and the same issue; `views`
    the detection views that flag the label and agree on the suggestion (names).
    """

    score: float
    suggestion_id: int | None
    suggestion_p: float | None
    in_prune_set: bool = False
    group: tuple[int, ...] = ()
    views: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseSearchPaths:
    """Where the case search finds what the models say of a case, as ORM lookup paths from
    `Case` to the model side's rows (labeling never imports them), and the champion whose
    predictions the search shows and sorts by (None: no champion yet).

    `issue_score`, `issue_flagged` and `issue_project` reach the case's label issue (its score,
    whether it is in the prune set, its project: naming it lets the planner use the issue
    table's own index); `prediction` is the relation to predictions, `prediction_version` the
    field a prediction's model version is in, `prediction_confidence` and `prediction_label`
    what is read through it.
    """

    issue_score: str
    issue_flagged: str
    issue_project: str
    prediction: str
    prediction_version: str
    prediction_confidence: str
    prediction_label: str
    champion_id: int | None = None


@dataclass(frozen=True)
class ExportSources:
    """Where the export reads what the models say of a case, as plain tables (labeling never
    imports the model side's models), and the champion whose predictions it exports.

    `issue_table` has one row per scored case, pool or evaluation (`case_id`, `score`,
    `suggested_label_id`, `suggested_p`, `in_prune_set`, `views`: a JSON list of names);
    `prediction_table` one per model version and case (`case_id`, `model_version_id`,
    `predicted_label_id`, `confidence`: the calibrated probability of the predicted class).
    `champion_id` / `champion_number` are None when the project has no champion yet.
    """

    issue_table: str
    prediction_table: str
    champion_id: int | None = None
    champion_number: int | None = None
