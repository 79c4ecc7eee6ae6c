"""What the queue page shows for one item: the case, the model's view of it, and why it is here.

A *card* is built the same way for every item, from what the item carries (its reason and model
facts, written by the pipeline when it made the item: `labeling.contracts`). In blind mode the
suggestion, probabilities, alternatives, given label and its source, class names in the reason
and the similar cases' labels are left out of the card itself (not hidden later). The cards of
evaluation, gold and pool-probe items are blind in every project (`unaided`): their labels judge
models (or analysts), and a label given beside the champion's suggestion leans to the champion;
the three look alike. `Card.shown()` is what the annotation records as shown. A *ticket* is the
signed (item, analyst, submission id, shown, render time) a rendered card carries, so a submit
proves the server showed that item to that analyst and what it showed. Review and adjudication items get a review card instead
(`labeling.selectors_review`), built on the same parts.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from django.core import signing
from django.utils import timezone

from labeling import statements as st
from labeling.contracts import NEUTRAL_REASON, PROBE_DETAIL, PickReason
from labeling.models import (
    Annotation,
    Case,
    LabelClass,
    Project,
    QueueAction,
    QueueItem,
    QueueKind,
    ResolutionSource,
    ResolvedLabel,
)
from workbench.core import sql

SIMILAR_SHOWN = 5
SIMILAR_READ = (
    10  # stored neighbours read, so trusted ones can be preferred (the pipeline stores 10)
)
SNIPPET_CHARS = 400  # of a similar case's text: read from the database, the rest never loaded
ALTERNATIVES_SHOWN = 2
TICKET_SALT = "labeling.queue.ticket"
TICKET_MAX_AGE = 7 * 24 * 3600  # seconds; a card left open longer is simply reloaded
MAX_DURATION_MS = 30 * 60 * 1000
LEFT_COUNTED = 1000  # open items counted for the progress line; more shows as "1,000+"

__all__ = [
    "CONSENSUS",
    "DOUBTFUL",
    "EXCLUDED",
    "GIVEN",
    "NEUTRAL_REASON",
    "REVIEWED",
    "VERIFIED",
    "Card",
    "SimilarCase",
    "Ticket",
    "business_name",
    "label_status",
    "queue_card",
    "similar_cases",
    "ticket_make",
    "ticket_read",
    "unaided",
]


@dataclass
class Alternative:
    label: LabelClass
    probability: float


# What a case's current label rests on (`label_status`): a reviewer's or adjudicator's decision
# (reviewed), agreeing analysts (consensus), an analyst (verified), a label in question
# (doubtful), only the imported label (given), or out of the dataset (excluded).
REVIEWED, CONSENSUS, VERIFIED = "reviewed", "consensus", "verified"
DOUBTFUL, GIVEN, EXCLUDED = "doubtful", "given", "excluded"
STATUS_TEXT = {
    REVIEWED: "reviewed",
    CONSENSUS: "consensus",
    VERIFIED: "verified by an analyst",
    GIVEN: "given",
    DOUBTFUL: "doubtful",
    EXCLUDED: "excluded",
}
# Which neighbours a card prefers when it has more than it shows: people's labels first.
TRUST_ORDER = {REVIEWED: 0, CONSENSUS: 0, VERIFIED: 0, GIVEN: 1, DOUBTFUL: 2, EXCLUDED: 2}
_SOURCE_STATUS = {
    ResolutionSource.REVIEW: REVIEWED,
    ResolutionSource.ADJUDICATED: REVIEWED,
    ResolutionSource.CONSENSUS: CONSENSUS,
    ResolutionSource.ANNOTATION: VERIFIED,
}


def label_status(resolved: ResolvedLabel | None) -> str:
    """How far a case's current label can be trusted, from its resolution (None: never resolved).

    A resolution by analysts, consensus, review or adjudication is trusted as such unless it is
    doubtful or gave no label (a tie, flags only); the given label is doubtful while an open issue
    or a noise flag says so.
    """
    if resolved is None:
        return GIVEN
    if resolved.excluded:
        return EXCLUDED
    if resolved.doubtful or (
        resolved.source != ResolutionSource.GIVEN and resolved.label_id is None
    ):
        return DOUBTFUL
    return _SOURCE_STATUS.get(ResolutionSource(resolved.source), GIVEN)


@dataclass
class SimilarCase:
    """A neighbour of the card's case with its current label: the resolved one, else the given
    one (None in blind mode, where only an exclusion is shown)."""

    case_id: int
    external_id: str
    text: str
    similarity: float
    label: LabelClass | None
    status: str = ""

    @property
    def excluded(self) -> bool:
        return self.status == EXCLUDED

    @property
    def status_text(self) -> str:
        return STATUS_TEXT.get(self.status, self.status)


@dataclass
class Card:
    item: QueueItem
    case: Case
    blind: bool
    business_name: str
    metadata: list[tuple[str, str]]
    reason: str
    given_label: LabelClass | None = None
    label_source: str = ""  # who gave the given label: a legacy rule, team, vendor or `import`
    suggestion: LabelClass | None = None
    suggestion_p: float | None = None
    alternatives: list[Alternative] = field(default_factory=list)
    similar: list[SimilarCase] = field(default_factory=list)
    model_version_id: int | None = None
    submission_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    is_review: ClassVar[bool] = False

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


def metadata_pairs(metadata: Any) -> list[tuple[str, str]]:
    """Metadata as (key, value) strings for a definition list; nested values as JSON. The
    business name is left out: it is the page's heading (`business_name`)."""
    if not isinstance(metadata, dict):
        return [("metadata", json.dumps(metadata, ensure_ascii=False))] if metadata else []
    pairs = []
    for key, value in metadata.items():
        if key == "business_name" and value:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        pairs.append((str(key), text))
    return pairs


def reason_sentence(reason: Any, *, blind: bool) -> str:
    """The item's stored reason in words (without class names or numbers when blind)."""
    return PickReason.from_json(reason).text(blind=blind)


_SIMILAR_CASE = ("id", "external_id", "given_label_id")
_SIMILAR_RESOLVED = ("id", "label_id", "source", "doubtful", "excluded")


def similar_cases(
    *, item: QueueItem, project: Project, classes: dict[int, LabelClass], blind: bool
) -> list[SimilarCase]:
    """The item's stored neighbours with their current labels and how far each can be trusted,
    in one plain statement: `SIMILAR_SHOWN` of them, people's labels preferred over given ones
    and those over doubtful ones, shown most similar first."""
    rows = [r for r in (item.similar_cases or []) if isinstance(r, dict)][:SIMILAR_READ]
    ids = [int(r["case_id"]) for r in rows if str(r.get("case_id", "")).isdigit()]
    cases: dict[int, tuple[Case, ResolvedLabel | None, str]] = {}
    if ids:
        statement = st.similar_cases(_SIMILAR_CASE, _SIMILAR_RESOLVED, SNIPPET_CHARS, len(ids))
        n_case = len(_SIMILAR_CASE)
        for found in sql.fetch_all(statement, [project.pk, *ids]):
            case = sql.load(Case, _SIMILAR_CASE, found[:n_case])
            resolved_row = found[n_case:-1]
            resolved = None
            if resolved_row[0] is not None:
                resolved = sql.load(ResolvedLabel, _SIMILAR_RESOLVED, resolved_row)
            cases[case.pk] = (case, resolved, found[-1])
    out = []
    trust = {}
    for row in rows:
        hit = cases.get(int(row.get("case_id") or 0))
        if hit is None:
            continue
        case, resolved, snippet = hit
        status = label_status(resolved)
        # Trust is judged on the real status even when blind (there it is not shown).
        trust[case.pk] = TRUST_ORDER.get(status, 1)
        label_id = resolved.label_id if resolved is not None else case.given_label_id
        label = None if blind else classes.get(int(label_id or 0))
        if blind and status != EXCLUDED:
            status = ""  # whether a neighbour's label is trusted says something about it
        sim = float(row.get("similarity") or 0.0)
        out.append(SimilarCase(case.pk, case.external_id, snippet, sim, label, status))
    kept = sorted(out, key=lambda s: (trust[s.case_id], -s.similarity))[:SIMILAR_SHOWN]
    return sorted(kept, key=lambda s: -s.similarity)


def business_name(case: Case) -> str:
    """The case's heading: the metadata's business name, else its external id."""
    if isinstance(case.metadata, dict):
        return str(case.metadata.get("business_name") or case.external_id)
    return case.external_id


# Items whose labels judge something: models (evaluation draws) or analysts (gold items).
UNAIDED_KINDS = (QueueKind.EVALUATION, QueueKind.GOLD)


def unaided(item: QueueItem) -> bool:
    """Whether `item`'s card is blind whatever the project's mode: an evaluation draw, a gold
    item or a pool-probe pick.

    Evaluation labels and the probe's judge champion against challenger, and gold answers judge
    the analysts: an answer given beside the champion's suggestion (or the given label, or the
    neighbours' labels) leans towards it, so the champion would be judged on labels that follow
    its own view and keep a lead it never earned. The three carry a random pick's reason and look
    alike; other picks, random ones included, show what they carry.
    """
    reason = PickReason.from_json(item.reason)
    return item.kind in UNAIDED_KINDS or PROBE_DETAIL in reason.details


def queue_card(*, project: Project, item: QueueItem, classes: dict[int, LabelClass]) -> Card:
    """The card of `item` (whose `case` is loaded); `classes` maps the project's class ids. Blind
    in blind projects and for evaluation, gold and pool-probe items (`unaided`)."""
    case = item.case
    reason = item.reason if isinstance(item.reason, dict) else {}
    blind = project.blind_mode or unaided(item)
    card = Card(
        item=item,
        case=case,
        blind=blind,
        business_name=business_name(case),
        metadata=metadata_pairs(case.metadata),
        reason=reason_sentence(reason, blind=blind),
        similar=similar_cases(item=item, project=project, classes=classes, blind=blind),
    )
    if blind:
        return card
    card.given_label = classes.get(case.given_label_id) if case.given_label_id else None
    card.label_source = case.given_label_source
    if item.suggestion_id is not None:
        card.model_version_id = item.model_version_id
        card.suggestion = classes.get(item.suggestion_id)
        card.suggestion_p = item.suggestion_p
        for class_id, p in [r for r in item.alternatives or [] if len(r) == 2]:
            label = classes.get(int(class_id))
            if label is not None and label != card.suggestion:
                card.alternatives.append(Alternative(label, float(p)))
        card.alternatives = card.alternatives[:ALTERNATIVES_SHOWN]
    return card


# Per process: project id -> ((split seed, classes key), its classes). Classes change rarely and
# every card shows them; a key is always read before the classes stored under it, so what a key
# finds is never older than the key (the seed tells apart projects of a reused id).
_classes_cache: dict[int, tuple[tuple[int, str], dict[int, LabelClass]]] = {}


def project_classes_by_id(*, project: Project, key: str | None = None) -> dict[int, LabelClass]:
    """The project's classes by id in the page's order, from this process's cache while their
    key (`statements.CLASSES_KEY`; read here when not given) is unchanged. The instances are
    shared by every request of the process: read them, never change them."""
    if key is None:
        row = sql.fetch_one(f"SELECT {st.CLASSES_KEY}", {"project": project.pk})
        key = str(row[0]) if row else ""
    stamp = (project.split_seed, str(key))
    hit = _classes_cache.get(project.pk)
    if hit is None or hit[0] != stamp:
        classes = LabelClass.objects.filter(project=project).order_by("order", "name", "id")
        hit = _classes_cache[project.pk] = (stamp, {c.pk: c for c in classes})
    return dict(hit[1])


@dataclass(frozen=True)
class Ticket:
    """What a rendered card proves when it comes back: which item and case it showed, the hash
    of the text shown, to whom, the submission id, when it was rendered (ms), what was shown."""

    item_id: int
    case_id: int
    content_hash: str | None
    user_id: int
    submission_id: str
    rendered_ms: int
    shown: dict[str, Any]

    # Short keys on the wire keep the signed value small (it rides in every card's form).
    _WIRE: ClassVar[tuple[tuple[str, str], ...]] = (
        ("i", "item_id"),
        ("c", "case_id"),
        ("h", "content_hash"),
        ("u", "user_id"),
    )
    _WIRE += (("s", "submission_id"), ("t", "rendered_ms"), ("shown", "shown"))

    def dumps(self) -> str:
        payload = {key: getattr(self, name) for key, name in self._WIRE}
        return signing.dumps(payload, salt=TICKET_SALT, compress=True)

    @classmethod
    def loads(cls, value: str) -> Ticket | None:
        try:
            payload = signing.loads(value, salt=TICKET_SALT, max_age=TICKET_MAX_AGE)
        except signing.BadSignature:
            return None
        if not isinstance(payload, dict):
            return None
        try:
            return cls(
                item_id=int(payload["i"]),
                case_id=int(payload["c"]),
                # Tickets signed before "h" existed label the current text.
                content_hash=payload.get("h"),
                user_id=int(payload["u"]),
                submission_id=str(payload["s"]),
                rendered_ms=int(payload["t"]),
                shown=dict(payload.get("shown") or {}),
            )
        except (KeyError, TypeError, ValueError):
            return None


def ticket_make(*, card: Card, user: Any) -> str:
    """The signed ticket a rendered card carries: the label records the hash of the text the
    analyst read and what was shown."""
    return Ticket(
        item_id=card.item.pk,
        case_id=card.case.pk,
        content_hash=card.case.content_hash,
        user_id=user.pk,
        submission_id=card.submission_id,
        rendered_ms=int(time.time() * 1000),
        shown=card.shown(),
    ).dumps()


def ticket_read(*, value: str, user: Any) -> Ticket | None:
    """The ticket when it is genuine, recent and the user's own; None otherwise."""
    ticket = Ticket.loads(value)
    return ticket if ticket is not None and ticket.user_id == user.pk else None


def duration_clamp(*, client_ms: int | None, rendered_ms: int) -> int:
    """The client's measured time, never more than the server saw pass since render, capped."""
    elapsed = max(0, int(time.time() * 1000) - int(rendered_ms))
    value = elapsed if client_ms is None else min(max(0, client_ms), elapsed + 2000)
    return min(value, MAX_DURATION_MS)


@dataclass(frozen=True)
class Progress:
    """The analyst's day so far: answers given today (skips and undone ones not counted) and the
    open items left in the project's queue."""

    today: int
    left: int  # LEFT_COUNTED + 1 stands for "more than LEFT_COUNTED"

    @property
    def left_text(self) -> str:
        return f"{LEFT_COUNTED:,}+" if self.left > LEFT_COUNTED else f"{self.left:,}"


_UNDO_ACTION = ("id", "kind", "annotation_id")
_UNDO_ANNOTATION = ("id", "case_id", "label_id", "exclude")


@dataclass(frozen=True)
class PageFacts:
    """What the queue page shows besides the card (`queue_page_facts`)."""

    classes_key: str
    progress: Progress
    undo: QueueAction | None  # with its annotation and case (external id only); label unset


def queue_page_facts(*, project: Project, user: Any) -> PageFacts:
    """The classes' key, the analyst's `Progress` and the action the undo button undoes (the
    newest not undone among their last UNDO_DEPTH), in one plain statement."""
    from labeling.services.annotations import UNDO_DEPTH

    midnight = timezone.make_aware(datetime.combine(timezone.localdate(), datetime.min.time()))
    params = {
        "project": project.pk,
        "analyst": user.pk,
        "midnight": sql.db_time(midnight),
        "cap": LEFT_COUNTED + 1,
        "depth": UNDO_DEPTH,
    }
    row = sql.fetch_one(st.queue_page_facts(_UNDO_ACTION, _UNDO_ANNOTATION), params)
    assert row is not None  # one row, whatever the tables hold
    key, today, left = row[:3]
    action_row = row[3 : 3 + len(_UNDO_ACTION)]
    annotation_row = row[3 + len(_UNDO_ACTION) : -1]
    undo = None
    if action_row[0] is not None:
        undo = sql.load(QueueAction, _UNDO_ACTION, action_row)
        annotation = sql.load(Annotation, _UNDO_ANNOTATION, annotation_row)
        annotation.case = sql.load(Case, ("id", "external_id"), (annotation.case_id, row[-1]))
        undo.annotation = annotation
    progress = Progress(today=int(today or 0), left=int(left or 0))
    return PageFacts(classes_key=str(key), progress=progress, undo=undo)


def queue_page_context(
    *, project: Project, user: Any, current: QueueItem | None, undone: QueueAction | None = None
) -> dict[str, Any]:
    """Everything the queue page (or its swapped card) needs for the analyst's current item: a
    review card for review and adjudication items, the labelling card for the others; with
    `undone`, the action an undo just took back, for the card's notice."""
    from labeling.selectors_review import review_card
    from labeling.services.queue.fill import DECISION_KINDS

    facts = queue_page_facts(project=project, user=user)
    classes = project_classes_by_id(project=project, key=facts.classes_key)
    for action in (facts.undo, undone):
        if action is not None:
            # The undo line and notice name the label from the classes at hand, not by a query.
            annotation = action.annotation
            annotation.label = classes.get(annotation.label_id) if annotation.label_id else None
    card: Card | None = None
    ticket = None
    if current is not None:
        if current.kind in DECISION_KINDS:
            card = review_card(project=project, item=current, classes=classes, viewer=user)
        else:
            card = queue_card(project=project, item=current, classes=classes)
        ticket = ticket_make(card=card, user=user)
    return {
        "project": project,
        "classes": list(classes.values()),
        "card": card,
        "ticket": ticket,
        "undo": facts.undo,
        "undone": undone,
        "progress": facts.progress,
    }
