"""The outermost ASGI layer of a worker: request id, request metrics and the access log.

It sits outside uvicorn's ``ProxyHeadersMiddleware`` (installed by ``serving/metrics_hooks.post_worker_init``),
so it sees the TCP peer: an incoming ``X-Request-ID`` is trusted only from a peer in ``forwarded_allow_ips`` (the
ingress), and the client IP logged is the one the proxy middleware resolved from ``X-Forwarded-For``.

Route label (django-prometheus's rule: the URL pattern name, never the raw path): ``probe`` for the probes,
``static`` under ``STATIC_URL``, ``admin`` under the admin's prefix (``ADMIN_URL_PREFIX``), the pattern's
``name`` for a matched Django URL, ``unmatched`` otherwise. Probe requests are counted but not logged unless
``ACCESS_LOG_PROBES=1``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from coffee_payment.monitoring import metrics
from coffee_payment.monitoring.requestid import HEADER_BYTES, REQUEST_ID, accept_request_id, new_request_id
from coffee_payment.serving.probes import HEALTH_PATH, LIVENESS_PATH, READINESS_PATH

logger = logging.getLogger(__name__)
PROBE_PATHS = frozenset((HEALTH_PATH, LIVENESS_PATH, READINESS_PATH))
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


@functools.cache
def _route_table() -> tuple[tuple[Any, str], ...]:
    """(pattern, label) of every top-level URL pattern: its name, or ``admin`` for the admin site's include
    wherever ``ADMIN_URL_PREFIX`` mounts it; other includes are not routes of ours."""
    from django.urls import URLPattern, get_resolver

    table = []
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLPattern):
            table.append((entry.pattern, entry.name or "unmatched"))
        elif getattr(entry, "namespace", None) == "admin":
            table.append((entry.pattern, "admin"))
    return tuple(table)


def django_route(path: str, *, static_prefix: str = "/static/") -> str:
    """The route label of ``path`` (see the module docstring).

    Matches the top-level patterns directly (what ``resolve()`` does first, without building a ResolverMatch:
    a few µs instead of tens, on every request).
    """
    if path in PROBE_PATHS:
        return "probe"
    if path.startswith(static_prefix):
        return "static"
    from django.apps import apps

    if not apps.ready:  # an app other than Django behind gunicorn.conf.py (loadtests/bare_app.py)
        return "unmatched"
    relative = path[1:]
    for pattern, name in _route_table():
        if pattern.match(relative):
            return name
    return "unmatched"


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


def loggable_path(path: str) -> str:
    """``path`` with each non-printable character (CR, LF, NUL, ...) escaped as Python would (``\\r``, ``\\x00``):
    the server percent-decodes the path, so ``%0d%0a`` would otherwise end the access line and start a forged one."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in path)


def _record(
    scope: dict[str, Any],
    response: dict[str, int],
    seconds: float,
    request_id: str,
    route_of: Callable[[str], str],
    access_log: logging.Logger | None,
    log_probes: bool,
) -> None:
    """Count one finished request (metrics.record_request) and write its access line unless it is off (``access_log``
    None) or the request is a probe and ``log_probes`` is false. ``response`` = {"status", "bytes"} as sent."""
    path = scope["path"]
    route = route_of(path)
    method = scope["method"] if scope["method"] in METHODS else "other"
    metrics.record_request(method, route, response["status"], seconds)
    if access_log is not None and (log_probes or route != "probe"):
        # A record built here and handed to the handlers: Logger.info would also walk the stack (findCaller)
        # for a file/line the access line never shows.
        record = logging.LogRecord(access_log.name, logging.INFO, __file__, 0, "access", None, None)
        client = scope.get("client")
        record.method, record.path, record.status = scope["method"], loggable_path(path), response["status"]
        record.duration_ms, record.bytes = seconds * 1000, response["bytes"]
        record.client_ip, record.request_id = (client[0] if client else "-"), request_id
        access_log.handle(record)


def observe(
    app: Callable,
    *,
    trusted: Callable[[str | None], bool],
    access_log: logging.Logger | None,
    log_probes: bool = False,
    route_of: Callable[[str], str] = django_route,
) -> Callable:
    """Wrap ``app`` (an ASGI app) with request ids, metrics and the access log.

    ``trusted(peer_ip)`` says whether the peer may set ``X-Request-ID``; ``access_log`` None turns the log off.
    """

    async def application(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        peer = scope.get("client")
        incoming = accept_request_id(_header(scope, HEADER_BYTES)) if trusted(peer[0] if peer else None) else None
        request_id = incoming or new_request_id()
        token = REQUEST_ID.set(request_id)
        response = {"status": 0, "bytes": 0}
        request_id_header = (HEADER_BYTES, request_id.encode())

        async def send_observed(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER_BYTES]
                message = {**message, "headers": [*headers, request_id_header]}
            elif message["type"] == "http.response.body":
                response["bytes"] += len(message.get("body", b""))
            await send(message)

        metrics.HTTP_IN_FLIGHT.inc()
        try:
            await app(scope, receive, send_observed)
        except Exception:  # not CancelledError: a client that left is status 0, not a server error
            if response["status"] == 0:
                response["status"] = 500
            raise
        finally:
            metrics.HTTP_IN_FLIGHT.dec()
            try:
                _record(scope, response, time.perf_counter() - started, request_id, route_of, access_log, log_probes)
            except Exception:  # the response is already sent: a metric or log failure must not look like the app's
                logger.exception("request %s not recorded", request_id)
            REQUEST_ID.reset(token)

    return application
