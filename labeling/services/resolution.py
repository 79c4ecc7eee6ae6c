"""A case's resolved label, recomputed from its current annotations (DESIGN "Resolution").

Current annotations are the non-superseded, non-stale (same content hash as the case), non-skip
ones. Authority decides first: adjudicated > review > consensus > annotation > given. The latest
current decision of the highest source present wins (a reviewer beats any number of agreeing
analysts; a later analyst vote changes nothing; an adjudication beats a review); a decision may
exclude the case from the dataset. Without a decision: majority vote over the queue labels; a tie
keeps the previous resolution (the caller queues an adjudication: `ResolvedLabel.tied`); flags
without a label give none and make the given label doubtful; no annotations gives the given label.
Between retrains a label replaces a consensus (Dawid-Skene, set by the pipeline's consensus step)
by the majority vote; the next consensus step sets it again.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from labeling import statements as st
from labeling.models import (
    Annotation,
    AnnotationSource,
    Case,
    Project,
    ResolutionSource,
    ResolvedLabel,
)
from workbench.core import sql
from workbench.core.audit import audit_event
from workbench.core.models import AuditEvent

# Whose word a resolution is, lowest first: a higher source is never undone by a lower one.
AUTHORITY: tuple[str, ...] = (
    ResolutionSource.GIVEN,
    ResolutionSource.ANNOTATION,
    ResolutionSource.CONSENSUS,
    ResolutionSource.REVIEW,
    ResolutionSource.ADJUDICATED,
)
RANK = {source: rank for rank, source in enumerate(AUTHORITY)}
# Annotations that are decisions, and the resolution source each makes.
DECIDING = {
    AnnotationSource.REVIEW: ResolutionSource.REVIEW,
    AnnotationSource.ADJUDICATION: ResolutionSource.ADJUDICATED,
}
# Sources set by people above the queue; a recompute from queue annotations never overrides them.
AUTHORITATIVE_SOURCES = (ResolutionSource.REVIEW, ResolutionSource.ADJUDICATED)


def group_may_extend_to(resolved_source: str | None, *, adjudication: bool) -> bool:
    """Whether a group decision (review, or adjudication) may extend to a near-duplicate resolved
    by `resolved_source`: never onto a decision of the same or a higher source, since a decision
    made on the case itself outweighs one extended to it from another case."""
    own = ResolutionSource.ADJUDICATED if adjudication else ResolutionSource.REVIEW
    return resolved_source is None or RANK.get(resolved_source, 0) < RANK[own]


def _decision(case: Case, decision: Annotation, votes: Counter[int]) -> dict[str, Any]:
    """The resolution a reviewer's or adjudicator's annotation makes."""
    source = DECIDING[AnnotationSource(decision.source)]
    label = None if decision.exclude else decision.label_id
    total = sum(votes.values())
    return {
        "label_id": label,
        "source": source,
        # How many of the queue's labels the decision agrees with (None without any).
        "agreement": votes[label] / total if total and label is not None else None,
        "doubtful": not decision.exclude and label is None,
        "excluded": decision.exclude,
    }


def resolution_compute(*, case: Case, annotations: list[Annotation]) -> dict[str, Any]:
    """The resolved label's fields for `case` given all its annotations (filters them itself)."""
    current = [
        a
        for a in annotations
        if a.superseded_at is None and not a.skipped and a.content_hash == case.content_hash
    ]
    queue = [a for a in current if a.source not in DECIDING]
    votes = Counter(a.label_id for a in queue if a.label_id is not None)
    decisions = [a for a in current if a.source in DECIDING]
    if decisions:
        top = max(decisions, key=lambda a: (RANK[DECIDING[AnnotationSource(a.source)]], a.pk or 0))
        return _decision(case, top, votes)
    if not current:
        return {
            "label_id": case.given_label_id,
            "source": ResolutionSource.GIVEN,
            "agreement": None,
            "excluded": False,
        }
    doubtful = any(a.noise_flag or (a.ambiguous and a.label_id is None) for a in current)
    if not votes:
        return {
            "label_id": None,
            "source": ResolutionSource.ANNOTATION,
            "agreement": None,
            "doubtful": True,
            "excluded": False,
        }
    ranked = votes.most_common()
    top_label, top_votes = ranked[0]
    tied = {label for label, n in ranked if n == top_votes} if len(ranked) > 1 else set()
    return {
        "label_id": None if len(tied) > 1 else top_label,
        "source": ResolutionSource.ANNOTATION,
        "agreement": top_votes / sum(votes.values()),
        "doubtful": doubtful,
        "excluded": False,
        "tie": tied if len(tied) > 1 else set(),
    }


def _keep_on_tie(fields: dict[str, Any], resolved: ResolvedLabel | None) -> bool:
    """Pop the vote's tie mark; on a tie, carry the previous resolution's label and source into
    `fields` (a tie is no reason to forget what the case was). Returns whether it was a tie."""
    tied: set[int] = fields.pop("tie", set())
    fields["confidence"] = None  # only the consensus step states one (its posterior)
    if (
        tied
        and resolved is not None
        # Still one of the tied answers, and not a decision (an undo is taking that back).
        and resolved.label_id in tied
        and resolved.source not in AUTHORITATIVE_SOURCES
    ):
        fields["label_id"] = resolved.label_id
        fields["source"] = resolved.source
        fields["confidence"] = resolved.confidence
    return bool(tied)


def resolution_state(resolved: ResolvedLabel | None) -> dict[str, Any] | None:
    if resolved is None:
        return None
    return {
        "label_id": resolved.label_id,
        "source": resolved.source,
        "confidence": resolved.confidence,
        "agreement": resolved.agreement,
        "doubtful": resolved.doubtful,
        "excluded": resolved.excluded,
    }


_RESOLVED_FIELDS = (
    "id",
    "case_id",
    "label_id",
    "source",
    "confidence",
    "agreement",
    "doubtful",
    "excluded",
)
# What the vote reads of an annotation (resolution_compute), and whose it is.
VOTE_FIELDS = (
    "label_id",
    "content_hash",
    "noise_flag",
    "ambiguous",
    "skipped",
    "superseded_at",
    "source",
    "exclude",
)
CURRENT_FIELDS = ("id", "annotator_id", *VOTE_FIELDS)


@dataclass
class ResolutionInputs:
    """A case's resolution as stored and its current annotations (CURRENT_FIELDS)."""

    resolved: ResolvedLabel | None
    current: list[Annotation]


def resolution_inputs(*, case: Case) -> ResolutionInputs:
    """What a recompute reads, in one statement; expects the case's row lock.

    No row locks of their own: every writer of a case's annotations or resolution holds the
    case's lock first (the pipeline's doubtful marks only touch given-label resolutions, which a
    label's recompute replaces anyway).
    """
    n = len(_RESOLVED_FIELDS)
    rows = sql.fetch_all(st.resolution_inputs(_RESOLVED_FIELDS, CURRENT_FIELDS), [case.pk])
    resolved = None
    if rows and rows[0][0] is not None:
        resolved = sql.load(ResolvedLabel, _RESOLVED_FIELDS, rows[0][:n])
    current = [sql.load(Annotation, CURRENT_FIELDS, r[n:]) for r in rows if r[n] is not None]
    return ResolutionInputs(resolved=resolved, current=current)


def resolution_recompute(
    *,
    case: Case,
    actor: Any = None,
    inputs: ResolutionInputs | None = None,
    events: list[AuditEvent] | None = None,
    reconsider: bool = False,
) -> ResolvedLabel:
    """Rewrite the case's ResolvedLabel from its annotations and audit a change.

    Call inside the transaction that changed the annotations, holding the case's row lock
    (`select_for_update`), so two concurrent submits on one case cannot each miss the other.
    A stored resolution of a higher source than the annotations now give (a review or
    adjudication set without an annotation) is left as it is, unless `reconsider` (an undo took
    the decision back). Runs in every label's transaction, so
    its statements are plain SQL (`labeling.statements`); the returned row has only the vote's fields.
    `inputs`: the stored resolution and the current annotations after the change, when the
    caller already read them under the same lock. With `events`, the audit event of a change is
    appended there for the caller to write with its own, instead of written here.
    """
    inputs = inputs or resolution_inputs(case=case)
    resolved, current = inputs.resolved, inputs.current
    fields = resolution_compute(case=case, annotations=current)
    tied = _keep_on_tie(fields, resolved)
    if (
        resolved is not None
        and not reconsider
        and RANK.get(resolved.source, 0) > RANK[fields["source"]]
        and resolved.source in AUTHORITATIVE_SOURCES
    ):
        return resolved
    before = resolution_state(resolved)
    if resolved is None:
        resolved = ResolvedLabel(case_id=case.pk)
    resolved.tied = tied  # type: ignore[attr-defined]  # read by the caller: queue an adjudication
    # No annotation: keep a doubtful mark the noise review may have set on the given label.
    resolved.doubtful = fields.pop("doubtful", resolved.doubtful)
    for name, value in fields.items():
        setattr(resolved, name, value)
    after = resolution_state(resolved)
    if after == before:
        return resolved
    resolved.updated_at = timezone.now()
    if resolved.pk is None:
        sql.insert(resolved)
    else:
        sql.execute(
            st.RESOLUTION_UPDATE,
            [
                resolved.label_id,
                resolved.source,
                resolved.confidence,
                resolved.agreement,
                resolved.doubtful,
                resolved.excluded,
                sql.db_time(resolved.updated_at),
                resolved.pk,
            ],
        )
    sql.execute(st.CASE_CHANGED, [sql.db_time(resolved.updated_at), case.pk])
    event = audit_event(
        actor=actor,
        action="resolution.change",
        obj=resolved,
        project_id=case.project_id,
        before=before,
        after=after,
    )
    if events is None:
        sql.insert(event)
    else:
        events.append(event)
    return resolved


def resolutions_recompute_many(
    *, project: Project, case_ids: Sequence[int], actor: Any = None
) -> int:
    """`resolution_recompute` for many cases at once (an import changed their text or given
    label): a few queries per call, whatever the number of cases; returns the rows changed.

    Call inside the transaction that changed the cases (their rows are locked by that update).
    Only existing resolutions are rewritten: a case without one has no annotation and resolves to
    its given label anyway. Review and adjudicated resolutions are left as they are (a decision
    on the old text still stands until someone decides on the new one).
    """
    rows = list(
        ResolvedLabel.objects.select_for_update(of=("self",))
        .filter(case_id__in=case_ids)
        .exclude(source__in=AUTHORITATIVE_SOURCES)
        .select_related("case")
        .only(
            "label_id",
            "source",
            "confidence",
            "agreement",
            "doubtful",
            "excluded",
            "case__content_hash",
            "case__given_label_id",
        )
    )
    if not rows:
        return 0
    annotations: dict[int, list[Annotation]] = defaultdict(list)
    for annotation in Annotation.objects.filter(
        case_id__in=[r.case_id for r in rows], superseded_at__isnull=True, skipped=False
    ).only("case_id", *VOTE_FIELDS):
        annotations[annotation.case_id].append(annotation)
    changed: list[ResolvedLabel] = []
    events: list[AuditEvent] = []
    actor_ok = actor if getattr(actor, "pk", None) else None
    now = timezone.now()
    for resolved in rows:
        before = resolution_state(resolved)
        fields = resolution_compute(case=resolved.case, annotations=annotations[resolved.case_id])
        _keep_on_tie(fields, resolved)
        resolved.doubtful = fields.pop("doubtful", resolved.doubtful)
        for name, value in fields.items():
            setattr(resolved, name, value)
        after = resolution_state(resolved)
        if after == before:
            continue
        resolved.updated_at = now
        changed.append(resolved)
        events.append(
            AuditEvent(
                actor=actor_ok,
                project=project,
                action="resolution.change",
                object_type=ResolvedLabel._meta.label_lower,
                object_id=str(resolved.pk),
                before=before,
                after=after,
            )
        )
    fields_written = [
        "label",
        "source",
        "confidence",
        "agreement",
        "doubtful",
        "excluded",
        "updated_at",
    ]
    ResolvedLabel.objects.bulk_update(changed, fields_written, batch_size=500)
    # The import already set these cases' changed_at (their text or given label changed).
    AuditEvent.objects.bulk_create(events, batch_size=500)
    return len(changed)
