"""What the queue page shows for one item: the case, the model's view of it, and why it is here.

A *card* is built the same way for every item; evaluation items carry no model reason and get the
neutral sentence random items get, so nothing on the page tells them apart. In blind mode the
suggestion, probabilities, alternatives, given label, class names in the reason and the similar
cases' labels are left out of the card itself (not hidden later). `Card.shown()` is what the
annotation records as shown. A *ticket* is the signed (item, analyst, submission id, shown,
render time) a rendered card carries, so a submit proves the server showed that item to that
analyst and what it showed.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.core import signing

from active_learning.models import ModelStatus, ModelVersion, Prediction
from labeling.models import Case, LabelClass, Project, QueueItem

SIMILAR_SHOWN = 5
ALTERNATIVES_SHOWN = 2
TICKET_SALT = "labeling.queue.ticket"
TICKET_MAX_AGE = 7 * 24 * 3600  # seconds; a card left open longer is simply reloaded
MAX_DURATION_MS = 30 * 60 * 1000

NEUTRAL_REASON = "Drawn at random from the cases still to label."
UNCERTAIN = {"margin", "least_confidence", "entropy", "diversity", "random_margin", "bald"}


@dataclass
class Alternative:
    label: LabelClass
    probability: float


@dataclass
class SimilarCase:
    case_id: int
    external_id: str
    text: str
    similarity: float
    label: LabelClass | None


@dataclass
class Card:
    item: QueueItem
    case: Case
    blind: bool
    business_name: str
    metadata: list[tuple[str, str]]
    reason: str
    given_label: LabelClass | None = None
    suggestion: LabelClass | None = None
    suggestion_p: float | None = None
    alternatives: list[Alternative] = field(default_factory=list)
    similar: list[SimilarCase] = field(default_factory=list)
    model_version_id: int | None = None
    submission_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def shown(self) -> dict[str, Any]:
        """What the analyst saw, as the annotation records it."""
        return {
            "suggestion_id": self.suggestion.pk if self.suggestion else None,
            "suggestion_p": round(self.suggestion_p, 4) if self.suggestion_p is not None else None,
            "model_version_id": self.model_version_id if not self.blind else None,
            "given_label_id": self.given_label.pk if self.given_label else None,
            "blind": self.blind,
            "reason": self.reason,
        }


def _name(label: LabelClass) -> str:
    return label.display_name or label.name


def metadata_pairs(metadata: Any) -> list[tuple[str, str]]:
    """Metadata as (key, value) strings for a definition list; nested values as JSON."""
    if not isinstance(metadata, dict):
        return [("metadata", json.dumps(metadata, ensure_ascii=False))] if metadata else []
    pairs = []
    for key, value in metadata.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        pairs.append((str(key), text))
    return pairs


def reason_sentence(reason: dict[str, Any], classes: dict[int, LabelClass], *, blind: bool) -> str:
    """The item's reason in words, as model facts; class names and numbers left out when blind."""
    strategy = str(reason.get("strategy") or "")
    ids = [classes.get(int(c)) for c in reason.get("class_ids") or [] if str(c).isdigit()]
    named = [c for c in ids if c is not None]
    probas = [float(p) for p in reason.get("probas") or []]
    if strategy in UNCERTAIN or strategy == "committee":
        if len(named) >= 2 and len(probas) >= 2:
            if blind:
                return "The model is torn between two classes."
            who = "The committee's models are" if strategy == "committee" else "The model is"
            return (
                f"{who} torn between {_name(named[0])} ({probas[0]:.2f}) "
                f"and {_name(named[1])} ({probas[1]:.2f})."
            )
        return "The model is unsure about this case."
    if strategy == "kmeans_medoid":
        size = int(reason.get("cluster_size") or 0)
        return f"A typical example of a cluster of {size:,} similar merchants."
    if strategy == "zero_shot":
        if named and not blind:
            return f"Closest to the description of {_name(named[0])}."
        return "Close to the description of one of the classes."
    if strategy == "keyword_seed":
        return "Mentions a keyword from the class guidelines."
    if strategy == "example_neighbour":
        return "Close to an example in the class guidelines."
    return NEUTRAL_REASON


def _prediction(item: QueueItem, champion_id: int | None) -> Prediction | None:
    version_id = item.model_version_id or champion_id
    if version_id is None:
        return None
    return Prediction.objects.filter(case_id=item.case_id, model_version_id=version_id).first()


def _similar(
    item: QueueItem, project: Project, classes: dict[int, LabelClass], blind: bool
) -> list[SimilarCase]:
    rows = [r for r in (item.similar_cases or []) if isinstance(r, dict)][:SIMILAR_SHOWN]
    ids = [int(r["case_id"]) for r in rows if str(r.get("case_id", "")).isdigit()]
    cases = Case.objects.filter(project=project, pk__in=ids).only("external_id", "text").in_bulk()
    out = []
    for row in rows:
        case = cases.get(int(row.get("case_id") or 0))
        if case is None:
            continue
        label = None if blind else classes.get(int(row.get("label_id") or 0))
        sim = float(row.get("similarity") or 0.0)
        out.append(SimilarCase(case.pk, case.external_id, case.text[:400], sim, label))
    return out


def champion_id_of(*, project: Project) -> int | None:
    return (
        ModelVersion.objects.filter(project_id=project.pk, status=ModelStatus.CHAMPION)
        .order_by()
        .values_list("pk", flat=True)
        .first()
    )


def queue_card(
    *, project: Project, item: QueueItem, classes: dict[int, LabelClass], champion_id: int | None
) -> Card:
    """The card of `item` (whose `case` is loaded); `classes` maps the project's class ids."""
    blind = project.blind_mode
    case = item.case
    reason = item.reason if isinstance(item.reason, dict) else {}
    card = Card(
        item=item,
        case=case,
        blind=blind,
        business_name=str((case.metadata or {}).get("business_name") or case.external_id)
        if isinstance(case.metadata, dict)
        else case.external_id,
        metadata=metadata_pairs(case.metadata),
        reason=reason_sentence(reason, classes, blind=blind),
        similar=_similar(item, project, classes, blind),
    )
    if blind:
        return card
    card.given_label = classes.get(case.given_label_id) if case.given_label_id else None
    prediction = _prediction(item, champion_id)
    if prediction is not None:
        card.model_version_id = prediction.model_version_id
        card.suggestion = classes.get(prediction.predicted_label_id or 0)
        card.suggestion_p = float(prediction.confidence)
        top = [r for r in (prediction.top_k or []) if isinstance(r, list | tuple) and len(r) == 2]
        for class_id, p in top:
            label = classes.get(int(class_id))
            if label is not None and label != card.suggestion:
                card.alternatives.append(Alternative(label, float(p)))
        card.alternatives = card.alternatives[:ALTERNATIVES_SHOWN]
    return card


def project_classes_by_id(*, project: Project) -> dict[int, LabelClass]:
    classes = LabelClass.objects.filter(project=project).order_by("order", "name", "id")
    return {c.pk: c for c in classes}


def ticket_make(*, card: Card, user: Any) -> str:
    """The signed ticket a rendered card carries (item, case, its text's hash, analyst,
    submission id, shown, time): the label records the hash of the text the analyst read."""
    payload = {
        "i": card.item.pk,
        "c": card.case.pk,
        "h": card.case.content_hash,
        "u": user.pk,
        "s": card.submission_id,
        "t": int(time.time() * 1000),
        "shown": card.shown(),
    }
    return signing.dumps(payload, salt=TICKET_SALT, compress=True)


def ticket_read(*, value: str, user: Any) -> dict[str, Any] | None:
    """The ticket's payload when it is genuine, recent and the user's own; None otherwise."""
    try:
        payload = signing.loads(value, salt=TICKET_SALT, max_age=TICKET_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("u") != user.pk:
        return None
    return payload


def duration_clamp(*, client_ms: int | None, rendered_ms: int) -> int:
    """The client's measured time, never more than the server saw pass since render, capped."""
    elapsed = max(0, int(time.time() * 1000) - int(rendered_ms))
    value = elapsed if client_ms is None else min(max(0, client_ms), elapsed + 2000)
    return min(value, MAX_DURATION_MS)


def queue_page_context(*, project: Project, user: Any, current: QueueItem | None) -> dict:
    """Everything the queue page (or its swapped card) needs for the analyst's current item."""
    from labeling.selectors import queue_undo_top

    classes = project_classes_by_id(project=project)
    card = ticket = None
    if current is not None:
        card = queue_card(
            project=project,
            item=current,
            classes=classes,
            champion_id=champion_id_of(project=project),
        )
        ticket = ticket_make(card=card, user=user)
    return {
        "project": project,
        "classes": list(classes.values()),
        "card": card,
        "ticket": ticket,
        "undo": queue_undo_top(project=project, analyst=user),
    }
