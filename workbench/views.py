"""Site-wide pages: home (redirects to the project list), the admins' status page, a health probe."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from workbench import health
from workbench.core.http import HtmxHttpRequest


@require_GET
def home(request: HtmxHttpRequest) -> HttpResponse:
    return redirect("labeling:project_list")


@require_GET
@staff_member_required
def status(request: HtmxHttpRequest) -> HttpResponse:
    report = health.status_report()
    template = "workbench/status.html#checks" if request.htmx else "workbench/status.html"
    return render(request, template, report)


@require_GET
def healthz(request: HtmxHttpRequest) -> JsonResponse:
    """Liveness for load balancers: the database answers. No details leak to anonymous callers."""
    check = health.check_database()
    return JsonResponse({"ok": check.ok}, status=200 if check.ok else 503)
