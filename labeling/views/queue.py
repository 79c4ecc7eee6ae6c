"""The analyst's queue: one case at a time; each answer returns the next case's card (htmx swap).

Every POST carries the card's signed ticket (item, analyst, submission id, what was shown), so a
double submit is a replay and nobody can answer an item the server did not show them. Review and
adjudication items (reviewers and admins only: anyone else gets 403 and nothing is written) are
answered with a verdict (`review_submit`), the others with a label (`annotation_submit`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from labeling.forms import QueueAnswerForm, QueueSkipForm, QueueUndoForm
from labeling.models import Project, QueueAction, QueueItem
from labeling.permissions import REVIEWER, project_for, role_allows
from labeling.selectors import queue_item_of, queue_items_held
from labeling.selectors_queue import Ticket, duration_clamp, queue_page_context, ticket_read
from labeling.services.annotations import (
    annotation_skip,
    annotation_submit,
    annotation_undo,
    review_submit,
)
from labeling.services.queue import queue_claim_next, queue_lease_renew
from labeling.services.queue.fill import DECISION_KINDS
from workbench.core.http import HtmxHttpRequest
from workbench.errors import ApplicationError

ERR_STALE_CARD = "This case was shown in another session or too long ago; here it is again."
ERR_NEED_VERDICT = (
    "Choose a decision: keep the given label, accept the suggestion, pick a class, "
    "exclude the case or mark it ambiguous."
)


def _next_case(
    request: HtmxHttpRequest,
    project: Project,
    role: str,
    *,
    error: str | None = None,
    undone: QueueAction | None = None,
) -> HttpResponse:
    """Claim what is missing and render the current card: the partial for htmx, else the page.
    With `undone` (the action an undo just took back) the card says so above the case."""
    if not request.htmx and request.method == "POST":
        if error:
            messages.error(request, error)
        if undone is not None:
            messages.info(request, f"Undone: your last {undone.get_kind_display().lower()}.")
        return redirect("labeling:queue", slug=project.slug)
    claim = queue_claim_next(project=project, analyst=request.user, role=role)
    context = queue_page_context(
        project=project, user=request.user, current=claim.current, undone=undone
    )
    context["error"] = error
    context["can_review"] = role_allows(role, REVIEWER)  # the header links the quality page
    template = "labeling/queue.html#card" if request.htmx else "labeling/queue.html"
    return render(request, template, context)


def _ticket_item(
    request: HtmxHttpRequest, project: Project, role: str, value: str
) -> tuple[QueueItem, Ticket]:
    """The item the card's ticket names; 404 for another project's, 403 for a decision item
    when the user's role is below reviewer (e.g. demoted since the card was shown)."""
    ticket = ticket_read(value=value, user=request.user)
    if ticket is None:
        raise ApplicationError(ERR_STALE_CARD)
    item = queue_item_of(project=project, item_id=ticket.item_id)
    if item is None:
        raise Http404("No such item in this project.")
    if item.kind in DECISION_KINDS and not role_allows(role, REVIEWER):
        raise PermissionDenied
    return item, ticket


def _answer(
    request: HtmxHttpRequest, item: QueueItem, ticket: Ticket, data: dict[str, Any]
) -> None:
    """Record the card's answer: a reviewer's verdict on a decision item, else a label."""
    duration = duration_clamp(client_ms=data["duration_ms"], rendered_ms=ticket.rendered_ms)
    if item.kind in DECISION_KINDS:
        if not data["verdict"]:
            raise ApplicationError(ERR_NEED_VERDICT)
        review_submit(
            item=item,
            reviewer=request.user,
            submission_id=ticket.submission_id,
            verdict=data["verdict"],
            label=data["label"],
            exclude_reason=data["exclude_reason"],
            apply_group=data["apply_group"],
            comment=data["comment"],
            duration_ms=duration,
            shown=ticket.shown,
            content_hash=ticket.content_hash,
        )
        return
    annotation_submit(
        item_or_case=item,
        analyst=request.user,
        submission_id=ticket.submission_id,
        label=data["label"],
        noise_flag=data["noise_flag"],
        ambiguous=data["ambiguous"],
        comment=data["comment"],
        duration_ms=duration,
        shown=ticket.shown,
        content_hash=ticket.content_hash,
    )


@require_GET
@login_required
def queue(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(user=request.user, slug=slug)
    return _next_case(request, project, role)


@require_POST
@login_required
def queue_submit(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(user=request.user, slug=slug)
    form = QueueAnswerForm(request.POST)
    valid = form.is_valid()
    if "ticket" in form.errors:
        return _next_case(request, project, role, error=ERR_STALE_CARD)
    try:
        # The ticket first: whoever may not answer the item gets 403 whatever else they sent.
        item, ticket = _ticket_item(request, project, role, form.cleaned_data["ticket"])
        if not valid:
            raise ApplicationError(form.error_message() or ERR_STALE_CARD)
        _answer(request, item, ticket, form.cleaned_data)
    except ApplicationError as exc:
        return _next_case(request, project, role, error=exc.message)
    return _next_case(request, project, role)


@require_POST
@login_required
def queue_skip(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(user=request.user, slug=slug)
    form = QueueSkipForm(request.POST)
    if not form.is_valid():
        return _next_case(request, project, role, error=ERR_STALE_CARD)
    try:
        item, ticket = _ticket_item(request, project, role, form.cleaned_data["ticket"])
        annotation_skip(
            item=item,
            analyst=request.user,
            submission_id=ticket.submission_id,
            reason=form.cleaned_data["comment"],
        )
    except ApplicationError as exc:
        return _next_case(request, project, role, error=exc.message)
    return _next_case(request, project, role)


@require_POST
@login_required
def queue_undo(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Undo the analyst's last action; the case it concerned comes back first."""
    project, role = project_for(user=request.user, slug=slug)
    form = QueueUndoForm(request.POST)
    action_id = form.cleaned_data["action_id"] if form.is_valid() else None
    try:
        result = annotation_undo(project=project, analyst=request.user, action_id=action_id)
    except ApplicationError as exc:
        return _next_case(request, project, role, error=exc.message)
    return _next_case(request, project, role, undone=result.action)


@require_POST
@login_required
def queue_ping(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Renew the leases of the analyst's held items (the page pings while it is visible)."""
    project, _ = project_for(user=request.user, slug=slug)
    held = [i.pk for i in queue_items_held(project=project, analyst=request.user)]
    renewed = queue_lease_renew(analyst=request.user, item_ids=held)
    return HttpResponse(status=204, headers={"X-Renewed": str(renewed)})
