"""Reviewers' and admins' case pages: search, a case's history, and labelling outside the queue."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from labeling.forms import CaseReviewForm, CaseSearchForm
from labeling.models import AnnotationSource
from labeling.permissions import REVIEWER, case_for, project_for
from labeling.selectors_queue import project_classes_by_id
from labeling.selectors_search import case_history, case_link_key, case_search
from labeling.services.annotations import annotation_submit
from labeling.services.case_review import case_review_hash, case_review_shown
from workbench.core.http import HtmxHttpRequest
from workbench.errors import ApplicationError


@require_GET
@login_required
def case_search_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Find a case by external id, words of its text, or a metadata `key=value`."""
    project, _ = project_for(user=request.user, slug=slug, needed=REVIEWER)
    form = CaseSearchForm(request.GET or None)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    result = case_search(project=project, query=query)
    if result.kind == "external_id" and not request.htmx:
        return redirect("labeling:case_detail", slug=slug, key=case_link_key(result.cases[0]))
    rows = [(case_link_key(c), c, c.pk in result.excluded) for c in result.cases]
    context = {"project": project, "form": form, "result": result, "rows": rows}
    template = "labeling/case_search.html#results" if request.htmx else "labeling/case_search.html"
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
