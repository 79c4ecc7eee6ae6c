"""The client's address as the login throttle counts it (django-axes `AXES_CLIENT_IP_CALLABLE`).

Directly exposed, the socket's address (`REMOTE_ADDR`) is the client. Behind N reverse proxies
that each append the address they saw to `X-Forwarded-For` (CLIENT_IP_PROXY_COUNT = N), the
client is the N-th entry from the right: entries further left were written by the client
itself and cannot be trusted (anyone can send the header). Too few entries: the socket's.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _address(value: str) -> str | None:
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = int(getattr(settings, "CLIENT_IP_PROXY_COUNT", 0))
    if proxies > 0:
        header = str(request.META.get(settings.CLIENT_IP_HEADER, ""))
        hops = [h for h in header.split(",") if h.strip()]
        if len(hops) >= proxies:
            found = _address(hops[-proxies])
            if found is not None:
                return found
    return _address(remote) or remote or None
