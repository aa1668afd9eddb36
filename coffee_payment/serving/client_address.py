"""The client's IP address as the server resolved it — never re-read from a forwarded header.

Under gunicorn + Uvicorn workers, uvicorn's proxy-headers middleware already replaced the peer address with the
``X-Forwarded-For`` client, and only for peers in ``GUNICORN_FORWARDED_ALLOW_IPS`` (uvicorn/middleware/
proxy_headers.py); the result is ``REMOTE_ADDR``. A trusted proxy can still pass on garbage (``X-Forwarded-For:
zzz`` becomes ``REMOTE_ADDR='zzz'``), and a ``GenericIPAddressField`` on PostgreSQL (``inet``) refuses it with a
500, so everything that stores or keys on a client address goes through :func:`client_ip`.
"""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """``REMOTE_ADDR`` when it is an IPv4 or IPv6 literal (in Python's canonical text form), else None: not an IP,
    empty, missing, or with an IPv6 zone such as ``fe80::1%eth0`` (which ``inet`` does not store)."""
    raw = (request.META.get("REMOTE_ADDR") or "").strip()
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if getattr(address, "scope_id", None):
        return None
    return str(address)
