"""A lost database answers 503 with a readable page (or an htmx notice); other errors keep 500.

The fault suite (tests/faults/test_outages.py) checks the same through gunicorn while its own
PostgreSQL is really down; these check the handler alone, fast, in every run.
"""

from __future__ import annotations

import pytest
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory

from workbench import urls
from workbench.error_pages import MSG_DATABASE_DOWN, server_error


def _handled(exc: Exception, **headers: str):
    request = RequestFactory().get("/projects/p/queue/", headers=headers)
    try:
        raise exc
    except Exception:  # handler500 runs inside Django's except block, as here
        return server_error(request)


def test_the_site_uses_this_handler() -> None:
    assert urls.handler500 == "workbench.error_pages.server_error"


@pytest.mark.parametrize(
    "exc", [OperationalError("connection refused"), InterfaceError("connection already closed")]
)
def test_a_lost_database_gets_a_503_page_saying_so(exc) -> None:
    response = _handled(exc)
    body = response.content.decode()
    assert response.status_code == 503 and response["Retry-After"] == "10"
    assert "<title>Database unavailable" in body and MSG_DATABASE_DOWN in body
    assert "connection refused" not in body and "Traceback" not in body


def test_htmx_gets_the_notice_alone() -> None:
    response = _handled(OperationalError("x"), HX_Request="true")
    body = response.content.decode().strip()
    assert response.status_code == 503
    assert body.startswith('<p class="notice bad" role="alert"') and MSG_DATABASE_DOWN in body
    assert "<html" not in body


def test_any_other_error_keeps_the_plain_500() -> None:
    response = _handled(ValueError("a bug"))
    assert response.status_code == 500 and "a bug" not in response.content.decode()
