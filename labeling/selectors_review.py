"""The reviewer's card: what a review or adjudication item shows on the queue page.

A review card is a queue card (`selectors_queue.Card`: the case, its metadata, the item's reason,
the similar cases with their current labels) plus what a decision needs: the given label and its
source, the detector's suggestion with its out-of-fold probability, the current answers of the
case (named, or numbered in blind projects, where analysts stay anonymous), and the group of
near-duplicates the decision may extend to, and the label-issue detector's latest view of the
case (its score, suggestion with probability and agreeing views, read where every page reads
it: `hooks.review_facts`). Reviewers always see the model's facts: blind mode
keeps them from analysts, and a review is about the given label. The one exception is an
adjudication of an evaluation case without a suggestion (an evaluation draw's tie): its decision
becomes the case's evaluation label, which judges the models, so the card shows no detector view
either (`without_model`). A fixed number of queries, whatever the number of answers, neighbours
or members.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from django.db.models.functions import Left

from labeling.contracts import ReviewFacts, detection_view_words
from labeling.models import (
    Annotation,
    AnnotationSource,
    Case,
    CaseConsensus,
    LabelClass,
    Project,
    QueueItem,
    QueueKind,
    ResolvedLabel,
    Split,
)
from labeling.selectors_queue import (
    SNIPPET_CHARS,
    Card,
    business_name,
    metadata_pairs,
    reason_sentence,
    similar_cases,
)
from labeling.services.resolution import group_may_extend_to

# The common reasons a reviewer excludes a case for ("other" asks for words).
EXCLUDE_REASONS: tuple[tuple[str, str], ...] = (
    ("not a merchant", "Not a merchant"),
    ("duplicate", "Duplicate"),
    ("unreadable", "Unreadable"),
    ("other", "Other (say why)"),
)
GROUP_LISTED = 50  # members listed on the card; the checkbox names them all

__all__ = [
    "EXCLUDE_REASONS",
    "Answer",
    "GroupMember",
    "ReviewCard",
    "review_card",
]


@dataclass
class Answer:
    """One current answer of the case: an analyst's label and flags, or an earlier decision."""

    who: str
    label: LabelClass | None
    noise_flag: bool
    ambiguous: bool
    comment: str
    source: str
    stale: bool
    created_at: datetime
    exclude_reason: str = ""
    excluded: bool = False
    is_decision: bool = False


@dataclass
class GroupMember:
    """A near-duplicate the decision may be applied to."""

    case_id: int
    external_id: str
    text: str
    given_label: LabelClass | None


@dataclass
class ReviewCard(Card):
    """The queue card of a review or adjudication item, with what the reviewer decides from."""

    kind: str = str(QueueKind.REVIEW)
    answers: list[Answer] = field(default_factory=list)
    names_hidden: bool = False
    group: list[GroupMember] = field(default_factory=list)
    group_size: int = 0
    consensus: CaseConsensus | None = None  # Dawid-Skene's label and posterior, latest step
    consensus_label: LabelClass | None = None
    issue: ReviewFacts | None = None  # the label-issue detector's latest view of the case
    issue_suggestion: LabelClass | None = None
    issue_views: tuple[str, ...] = ()  # in words
    # An evaluation case's tie: decided without any model's view (its decision evaluates them).
    without_model: bool = False
    is_review: ClassVar[bool] = True
    exclude_reasons: ClassVar[tuple[tuple[str, str], ...]] = EXCLUDE_REASONS

    @property
    def issue_suggestion_shown(self) -> bool:
        """The item's own suggestion is the detector's current one (said once, not twice)."""
        return (
            self.issue is not None
            and self.model_version_id is None
            and self.issue.suggestion_id == getattr(self.suggestion, "pk", None)
        )

    @property
    def group_more(self) -> int:
        """Members the card does not list."""
        return self.group_size - len(self.group)

    def shown(self) -> dict[str, Any]:
        return {
            **super().shown(),
            "kind": self.kind,
            "answers": len(self.answers),
            "names_hidden": self.names_hidden,
            "group_size": self.group_size,
            "without_model": self.without_model,
        }


def _answers(
    *, case: Case, classes: dict[int, LabelClass], names_hidden: bool, viewer: Any
) -> list[Answer]:
    """The case's current answers, oldest first; in blind projects analysts are numbered in the
    order they first answered (the reviewer's own answers say "You")."""
    rows = (
        Annotation.objects.filter(case=case, superseded_at__isnull=True, skipped=False)
        .select_related("annotator")
        .only(
            "label_id",
            "noise_flag",
            "ambiguous",
            "comment",
            "source",
            "content_hash",
            "exclude",
            "exclude_reason",
            "created_at",
            "annotator__username",
            "annotator__first_name",
            "annotator__last_name",
        )
        .order_by("created_at", "id")
    )
    numbers: dict[int, int] = {}
    out = []
    for a in rows:
        if names_hidden:
            if a.annotator_id == getattr(viewer, "pk", None):
                who = "You"
            else:
                number = numbers.setdefault(a.annotator_id, len(numbers) + 1)
                who = f"Analyst {number}"
        else:
            who = a.annotator.get_full_name() or a.annotator.get_username()
        out.append(
            Answer(
                who=who,
                label=classes.get(a.label_id) if a.label_id is not None else None,
                noise_flag=a.noise_flag,
                ambiguous=a.ambiguous,
                comment=a.comment,
                source=str(AnnotationSource(a.source).label).lower(),
                stale=a.content_hash != case.content_hash,
                created_at=a.created_at,
                exclude_reason=a.exclude_reason,
                excluded=a.exclude,
                is_decision=a.source != AnnotationSource.QUEUE,
            )
        )
    return out


def _group(
    *, item: QueueItem, case: Case, classes: dict[int, LabelClass]
) -> tuple[list[GroupMember], int]:
    """The members a decision on `item` would reach (as `review_submit` picks them: same project
    and given label, `resolution.group_may_extend_to`), the first GROUP_LISTED of them,
    and how many there are."""
    wanted = sorted({int(c) for c in item.group or [] if str(c).isdigit()} - {case.pk})
    if not wanted:
        return [], 0
    rows = (
        Case.objects.filter(project_id=case.project_id, pk__in=wanted)
        .select_related("resolved")
        .annotate(snippet=Left("text", SNIPPET_CHARS))
        .only("external_id", "given_label_id", "resolved__source")
        .order_by("external_id", "id")
    )
    members = []
    for member in rows:
        if member.given_label_id != case.given_label_id:
            continue
        resolved: ResolvedLabel | None = getattr(member, "resolved", None)
        source = resolved.source if resolved is not None else None
        if not group_may_extend_to(source, adjudication=item.kind == QueueKind.ADJUDICATION):
            continue
        given = classes.get(member.given_label_id) if member.given_label_id else None
        members.append(GroupMember(member.pk, member.external_id, member.snippet, given))
    return members[:GROUP_LISTED], len(members)


def review_card(
    *, project: Project, item: QueueItem, classes: dict[int, LabelClass], viewer: Any = None
) -> ReviewCard:
    """The review card of a review or adjudication `item` (whose `case` is loaded) for `viewer`;
    `classes` maps the project's class ids."""
    from labeling.hooks import model_side

    case = item.case
    names_hidden = project.blind_mode
    group, group_size = _group(item=item, case=case, classes=classes)
    consensus = CaseConsensus.objects.filter(case=case).first()
    without_model = evaluation_decision_without_model(item=item, case=case)
    issue = None if without_model else model_side().review_facts(case_id=case.pk)
    issue_suggestion = (
        classes.get(issue.suggestion_id) if issue is not None and issue.suggestion_id else None
    )
    return ReviewCard(
        item=item,
        case=case,
        blind=False,
        business_name=business_name(case),
        metadata=metadata_pairs(case.metadata),
        reason=reason_sentence(item.reason if isinstance(item.reason, dict) else {}, blind=False),
        given_label=classes.get(case.given_label_id) if case.given_label_id else None,
        suggestion=classes.get(item.suggestion_id) if item.suggestion_id else None,
        suggestion_p=item.suggestion_p if item.suggestion_id else None,
        similar=similar_cases(item=item, project=project, classes=classes, blind=False),
        model_version_id=item.model_version_id,
        kind=str(item.kind),
        label_source=case.given_label_source,
        answers=_answers(case=case, classes=classes, names_hidden=names_hidden, viewer=viewer),
        names_hidden=names_hidden,
        group=group,
        group_size=group_size,
        consensus=consensus,
        consensus_label=classes.get(consensus.label_id) if consensus else None,
        issue=issue,
        issue_suggestion=issue_suggestion,
        issue_views=detection_view_words(list(issue.views)) if issue is not None else (),
        without_model=without_model,
    )


def evaluation_decision_without_model(*, item: QueueItem, case: Case) -> bool:
    """Whether `item` asks for an evaluation case's decision without any model's view: an
    adjudication without a suggestion (`adjudication.tie_adjudication_request` makes them)."""
    return (
        item.kind == QueueKind.ADJUDICATION
        and item.suggestion_id is None
        and case.split == Split.EVAL
    )
