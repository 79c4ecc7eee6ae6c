"""Reviewers' and admins' case pages: search, a case's history, and labelling outside the queue."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from labeling.forms import ERR_BAD_CURSOR, CaseReviewForm, CaseSearchForm
from labeling.models import AnnotationSource
from labeling.permissions import REVIEWER, case_for, project_for
from labeling.selectors_history import case_history, case_link_key
from labeling.selectors_queue import project_classes_by_id
from labeling.selectors_search import (
    PAGE_SIZE,
    BadCursor,
    SearchFilters,
    SearchSort,
    case_by_external_id,
    case_search,
    case_search_choices,
)
from labeling.services.annotations import annotation_submit
from labeling.services.case_review import case_review_hash, case_review_shown
from workbench.core.http import HtmxHttpRequest
from workbench.errors import ApplicationError


@require_GET
@login_required
def case_search_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Find cases by id prefix, words of the name or description, or a metadata `key=value`,
    narrowed by filters, in a sort, a page at a time. An id alone (no filters) that names one
    case opens it; htmx requests get the results partial."""
    project, _ = project_for(user=request.user, slug=slug, needed=REVIEWER)
    partial = request.htmx and not request.htmx.history_restore_request
    people = not partial or bool(request.GET.get("labelled_by"))  # the form's select needs them
    choices = case_search_choices(project=project, people=people)
    form = CaseSearchForm(
        request.GET or None, classes=choices.classes, analysts=choices.people, user=request.user
    )
    page, errors = None, form.error_messages() if form.is_bound and not form.is_valid() else []
    if not errors:
        filters = form.filters() if form.is_bound else SearchFilters()
        cursor = form.cleaned_data.get("cursor") if form.is_bound else None
        plain = not filters.narrowed and filters.sort == SearchSort.CHANGED and cursor is None
        exact = None
        if plain and not request.htmx:
            exact = case_by_external_id(project=project, query=filters.query)
        if exact is not None:
            return redirect("labeling:case_detail", slug=slug, key=case_link_key(exact))
        try:
            classes = {c.pk: c for c in choices.classes}
            page = case_search(project=project, filters=filters, after=cursor, classes=classes)
        except (ApplicationError, BadCursor) as exc:
            errors = [exc.message if isinstance(exc, ApplicationError) else ERR_BAD_CURSOR]
    context = {"project": project, "form": form, "page": page, "errors": errors}
    context["page_size"] = PAGE_SIZE
    template = "labeling/case_search.html#results" if partial else "labeling/case_search.html"
    return render(request, template, context)


@require_GET
@login_required
def case_detail(request: HtmxHttpRequest, slug: str, key: str) -> HttpResponse:
    """The case with its full history, and a form to label it outside queue order."""
    project, _ = project_for(user=request.user, slug=slug, needed=REVIEWER)
    case = case_for(project=project, key=key)
    context = {
        "project": project,
        "case": case,
        "key": case_link_key(case),
        "classes": list(project_classes_by_id(project=project).values()),
        "submission_id": uuid.uuid4(),
        **case_history(case=case),
    }
    return render(request, "labeling/case_detail.html", context)


@require_POST
@login_required
def case_label(request: HtmxHttpRequest, slug: str, key: str) -> HttpResponse:
    """A reviewer's label of the case (source "review"), idempotent by submission id."""
    project, _ = project_for(user=request.user, slug=slug, needed=REVIEWER)
    case = case_for(project=project, key=key)
    form = CaseReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The form was incomplete; nothing was saved.")
        return redirect("labeling:case_detail", slug=slug, key=case_link_key(case))
    data = form.cleaned_data
    try:
        annotation_submit(
            item_or_case=case,
            analyst=request.user,
            submission_id=data["submission_id"],
            label=data["label"],
            noise_flag=data["noise_flag"],
            ambiguous=data["ambiguous"],
            comment=data["comment"],
            shown=case_review_shown(case=case),
            source=str(AnnotationSource.REVIEW),
            content_hash=case_review_hash(posted=data["content_hash"], case=case),
        )
        messages.success(request, "Label saved.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("labeling:case_detail", slug=slug, key=case_link_key(case))
