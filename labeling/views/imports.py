"""The upload page of a project's admins, and the progress of the import job it starts."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseStopPolling

from labeling.forms import CaseImportForm
from labeling.permissions import ADMIN, project_for
from labeling.services.imports.jobs import (
    IMPORT_JOB_KIND,
    case_import_job_state,
    case_import_upload,
)
from workbench.core.http import HtmxHttpRequest
from workbench.core.models import Job


@require_http_methods(["GET", "POST"])
@login_required
def case_import(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Upload a file; the import runs as a job and the browser follows it."""
    project, _ = project_for(user=request.user, slug=slug, needed=ADMIN)
    form = CaseImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = case_import_upload(
            project=project,
            upload=form.cleaned_data["file"],
            columns=form.columns(),
            update=form.cleaned_data["update"],
            actor=request.user,
        )
        return redirect("labeling:case_import_job", slug=project.slug, job_id=job.pk)
    limit_mb = settings.IMPORT_UPLOAD_MAX_MB
    context = {"project": project, "form": form, "limit_mb": limit_mb}
    return render(request, "labeling/import.html", context)


@require_GET
@login_required
def case_import_job(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    """The import's progress and report; htmx polls the partial and stops (286) when done."""
    project, _ = project_for(user=request.user, slug=slug, needed=ADMIN)
    job = get_object_or_404(Job, pk=job_id, project=project, kind=IMPORT_JOB_KIND)
    context = {"project": project, **case_import_job_state(job=job)}
    if not request.htmx:
        return render(request, "labeling/import_job.html", context)
    response = render(request, "labeling/import_job.html#progress", context)
    if context["finished"]:
        response.status_code = HttpResponseStopPolling.status_code
    return response
