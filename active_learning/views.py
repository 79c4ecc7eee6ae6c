"""The project dashboard (issue 17): the page, each plot's PNG and the operating points' CSV.

Reviewers and admins see every panel; analysts their own people row only (plots and the CSV
are reviewers' too: 403 for analysts); non-members get 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from active_learning.dashboard import page
from labeling.permissions import ANALYST, REVIEWER, project_for, role_allows
from workbench.core.http import HtmxHttpRequest


@require_GET
@login_required
def dashboard(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(user=request.user, slug=slug, needed=ANALYST)
    context = page.dashboard_context(
        project=project, user_id=int(request.user.pk or 0), full=role_allows(role, REVIEWER)
    )
    return render(request, "active_learning/dashboard.html", context)


@require_GET
@login_required
def dashboard_plot(request: HtmxHttpRequest, slug: str, name: str) -> HttpResponse:
    """One plot as a PNG; its URL carries its data's fingerprint, so it is cached for a year."""
    project, _ = project_for(user=request.user, slug=slug, needed=REVIEWER)
    if name not in page.PLOTS:
        raise Http404("No such plot.")
    png, digest = page.plot_png(project=project, name=name)
    response = HttpResponse(png, content_type="image/png")
    if request.GET.get("v") == digest:
        response["Cache-Control"] = "private, max-age=31536000, immutable"
    else:
        response["Cache-Control"] = "private, no-cache"
    return response


@require_GET
@login_required
def operating_points_csv(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(user=request.user, slug=slug, needed=REVIEWER)
    response = HttpResponse(page.operating_points_csv(project=project), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-operating-points.csv"'
    return response
