"""The export page of a project's admins, the progress of the job it starts, and the download."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseStopPolling

from labeling.forms import CaseExportForm
from labeling.permissions import ADMIN, project_for
from labeling.services.exports.jobs import (
    EXPORT_JOB_KIND,
    case_export_job_state,
    case_export_request,
    export_download_path,
)
from workbench.core.http import HtmxHttpRequest
from workbench.core.models import Job

RECENT = 10


@require_http_methods(["GET", "POST"])
@login_required
def case_export(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Choose format and content; the export runs as a job and the browser follows it."""
    project, _ = project_for(user=request.user, slug=slug, needed=ADMIN)
    form = CaseExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        job = case_export_request(
            project=project,
            fmt=form.cleaned_data["format"],
            options=form.options(),
            actor=request.user,
        )
        return redirect("labeling:case_export_job", slug=project.slug, job_id=job.pk)
    recent = Job.objects.filter(project=project, kind=EXPORT_JOB_KIND)[:RECENT]
    context = {"project": project, "form": form, "recent": recent}
    return render(request, "labeling/export.html", context)


@require_GET
@login_required
def case_export_job(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    """The export's progress, then its download links; htmx polls the partial until done."""
    project, _ = project_for(user=request.user, slug=slug, needed=ADMIN)
    job = get_object_or_404(Job, pk=job_id, project=project, kind=EXPORT_JOB_KIND)
    context = {"project": project, **case_export_job_state(job=job)}
    if not request.htmx:
        return render(request, "labeling/export_job.html", context)
    response = render(request, "labeling/export_job.html#progress", context)
    if context["finished"]:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@require_GET
@login_required
def case_export_download(
    request: HtmxHttpRequest, slug: str, job_id: int, name: str
) -> FileResponse:
    """One file of a finished export, streamed; only to the project's admins."""
    project, _ = project_for(user=request.user, slug=slug, needed=ADMIN)
    job = get_object_or_404(Job, pk=job_id, project=project, kind=EXPORT_JOB_KIND)
    path = export_download_path(job=job, name=name)
    if path is None:
        raise Http404("No such export file (it may have expired).")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name)
