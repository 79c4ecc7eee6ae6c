"""The seam: what labeling asks of the model side and tells it, without importing it.

Dependencies run one way, `active_learning` -> `labeling` -> `workbench.core`. The model side
registers its functions here when its app is ready (`active_learning.apps`); labeling calls
`model_side()`. Unregistered (labeling alone), there is no model: no retrain starts, no champion,
no model facts, and every page still works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from labeling.contracts import (
    CaseModelFacts,
    CaseSearchPaths,
    ChampionSummary,
    DecisionSummary,
    ExportSources,
    ReviewFacts,
)

if TYPE_CHECKING:
    from labeling.models import Case, Project
    from workbench.core.models import Job


def _no_retrain(**_kwargs: Any) -> Job | None:
    return None


def _no_champion(*, project: Project) -> ChampionSummary | None:
    return None


def _no_decision(*, project: Project) -> DecisionSummary | None:
    return None


def _no_facts(*, case: Case) -> CaseModelFacts:
    return CaseModelFacts()


def _no_review_facts(*, case_id: int) -> ReviewFacts | None:
    return None


def _no_refill(*, project: Project, count: int) -> int | None:
    return None


def _no_search_paths(*, project: Project) -> CaseSearchPaths | None:
    return None


def _no_export_sources(*, project: Project) -> ExportSources | None:
    return None


@dataclass(frozen=True)
class ModelSide:
    """The model side's entry points, as labeling calls them (keyword arguments only).

    - `retrain_start(project=, reason=, automatic=)`: ask for a retrain (an admin's "Retrain
      now", an import, a queue running low); the queued Job, or None when one is pending.
    - `embedding_start(project=, reason=)`: new or changed texts arrived (an import); embed
      them in a job of their own, which asks for a retrain when done. The queued Job, or None
      when one is pending.
    - `retrain_if_due(project_id=)`: labels arrived and the project's counter says a retrain is
      due; start it. Called after commit; must never raise.
    - `champion(project=)`: the deciding model, or None.
    - `last_decision(project=)`: the newest promotion decision, or None.
    - `case_facts(case=)`: what the models say of a case (the case page).
    - `review_facts(case_id=)`: the label-issue detector's view of a case's label, or None;
      called inside a label's transaction when an analyst asks for a second opinion, so one
      indexed read.
    - `queue_refill(project=, count=)`: up to `count` pool items picked from the champion's
      stored scores (no retrain); None when there is no champion or it has no stored scores
      (labeling then fills at random). Called after commit, holding the project's row lock.
    - `case_search_paths(project=)`: where the case search reads label-issue scores and the
      champion's predictions (`CaseSearchPaths`), or None (no issue or model columns).
    - `export_sources(project=)`: the tables the export reads label issues and the champion's
      predictions from (`ExportSources`), or None (those columns stay empty).
    """

    retrain_start: Callable[..., Job | None] = _no_retrain
    embedding_start: Callable[..., Job | None] = _no_retrain
    retrain_if_due: Callable[..., Job | None] = _no_retrain
    champion: Callable[..., ChampionSummary | None] = _no_champion
    last_decision: Callable[..., DecisionSummary | None] = _no_decision
    case_facts: Callable[..., CaseModelFacts] = _no_facts
    review_facts: Callable[..., ReviewFacts | None] = _no_review_facts
    queue_refill: Callable[..., int | None] = _no_refill
    case_search_paths: Callable[..., CaseSearchPaths | None] = _no_search_paths
    export_sources: Callable[..., ExportSources | None] = _no_export_sources


_registered = ModelSide()


def register(**functions: Callable[..., Any]) -> None:
    """Install the model side's functions (names as in `ModelSide`); later calls replace."""
    global _registered
    _registered = replace(_registered, **functions)


def model_side() -> ModelSide:
    return _registered
