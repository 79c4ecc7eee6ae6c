"""Request limits and quiet refusals.

`UploadLimitMiddleware` refuses a POST whose declared body exceeds IMPORT_UPLOAD_MAX_MB before
anything reads it (CSRF's check would parse, and spool to disk, the whole multipart body first);
the WSGI layer never reads past Content-Length, so the declared size bounds what is read.
`No403Traceback` keeps a refused request (PermissionDenied) to one log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

ERR_TOO_LARGE = (
    "The upload is {size:,.1f} MB; the upload page accepts at most {limit:,.1f} MB. "
    "Import larger files with the command: manage.py import_cases <project> <file>."
)
MB = 1024 * 1024


def upload_limit_bytes() -> int:
    return int(float(settings.IMPORT_UPLOAD_MAX_MB) * MB)


class UploadLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            limit = upload_limit_bytes()
            if declared > limit:
                message = ERR_TOO_LARGE.format(size=declared / MB, limit=limit / MB)
                return render(request, "413.html", {"message": message}, status=413)
        return self.get_response(request)


class No403Traceback(logging.Filter):
    """Drops the traceback of `django.request`'s "Forbidden" records (the line stays)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
