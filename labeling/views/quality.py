"""The reviewers' "Label quality" page: what the latest consensus step measured (issue 14)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from labeling.permissions import REVIEWER, project_for
from labeling.selectors_quality import quality_report
from workbench.core.http import HtmxHttpRequest


@require_GET
@login_required
def quality(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Agreement, analysts' and given-label sources' reliability, and the weakest pairs, from the
    latest consensus run (reviewers and admins, like case search; analysts get 403)."""
    project, _ = project_for(user=request.user, slug=slug, needed=REVIEWER)
    context = {"project": project, "report": quality_report(project=project)}
    return render(request, "labeling/quality.html", context)
