"""The project list with each project's progress, and the admins' "Retrain now" with its bar."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from labeling import selectors
from labeling.hooks import model_side
from labeling.models import Project
from labeling.permissions import ADMIN, ANALYST, project_for, role_allows
from workbench.core.http import HtmxHttpRequest
from workbench.core.jobs import FINISHED


@require_GET
@login_required
def project_list(request: HtmxHttpRequest) -> HttpResponse:
    rows = [
        {**selectors.project_progress(project=p), "role": role, "is_admin": role == ADMIN}
        for p, role in selectors.projects_with_roles(user=request.user)
    ]
    return render(request, "labeling/project_list.html", {"rows": rows})


@require_POST
@login_required
def project_retrain(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Start a retrain now (admins); the list then shows its progress bar."""
    project, _ = project_for(user=request.user, slug=slug, needed=ADMIN)
    job = model_side().retrain_start(project=project, reason="manual")
    if job is None:
        messages.info(request, f"A retrain of {project.name} is already queued or running.")
    else:
        messages.success(request, f"Retrain of {project.name} started.")
    if request.htmx:
        return _retrain_fragment(request, project=project, is_admin=True, poll_stop=False)
    return redirect("labeling:project_list")


@require_GET
@login_required
def retrain_progress(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The newest retrain job's bar; htmx polls it every 2 s and stops (286) when it is done."""
    project, role = project_for(user=request.user, slug=slug, needed=ANALYST)
    return _retrain_fragment(
        request, project=project, is_admin=role_allows(role, ADMIN), poll_stop=bool(request.htmx)
    )


def _retrain_fragment(
    request: HtmxHttpRequest, *, project: Project, is_admin: bool, poll_stop: bool
) -> HttpResponse:
    job = selectors.retrain_job_latest(project=project)
    running = job is not None and job.status not in FINISHED
    context = {"p": project, "job": job, "running": running, "is_admin": is_admin}
    response = render(request, "labeling/project_list.html#retrain", context)
    if poll_stop and not running:
        response.status_code = HttpResponseStopPolling.status_code
    return response
