"""Error pages: a database that is down or restarting answers 503 with a page that says so.

Django's handler500 sees every exception a view or middleware let through (when DEBUG is off).
A lost database connection (`OperationalError`, `InterfaceError`: refused, reset, the server
restarting) is not a bug in the request but an outage: it gets HTTP 503 with `Retry-After` and
a readable page, or for htmx requests a short notice the queue page shows in place of the card's
answer. Everything else keeps Django's plain 500 page. Nothing here touches the database: the
page is rendered without the request's context processors (no session, no user).
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views import defaults

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 10
MSG_DATABASE_DOWN = (
    "The database is unavailable for a moment (restarting or unreachable). "
    "What you just did may not have been saved: wait a few seconds and try again."
)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """HTTP 503: the full page, or for htmx requests the notice alone."""
    htmx = request.headers.get("HX-Request") == "true"
    template = "503_partial.html" if htmx else "503.html"
    body = render_to_string(template, {"message": MSG_DATABASE_DOWN})
    response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: 503 for a lost database, Django's 500 page for anything else."""
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        return database_unavailable(request)
    return defaults.server_error(request)
