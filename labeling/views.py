"""Pages of the labeling app. Thin: parse input, call one selector or service, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from labeling import selectors


@require_GET
@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = selectors.project_list_for(user=request.user)
    return render(request, "labeling/project_list.html", {"projects": projects})
