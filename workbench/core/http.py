"""Request type for views behind django-htmx's middleware, which sets `request.htmx`."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """An HttpRequest as django-htmx's middleware leaves it (the type django-htmx documents)."""

    htmx: HtmxDetails
