"""The outermost ASGI layer of a worker: request id, request metrics and the access log.

It sits outside uvicorn's ``ProxyHeadersMiddleware`` (installed by ``serving/metrics_hooks.post_worker_init``),
so it sees the TCP peer: an incoming ``X-Request-ID`` is trusted only from a peer in ``forwarded_allow_ips`` (the
ingress), and the client IP logged is the one the proxy middleware resolved from ``X-Forwarded-For``.

Route label (django-prometheus's rule: the URL pattern name, never the raw path): ``probe`` for the probes,
``static`` under ``STATIC_URL``, ``admin`` under ``/admin/``, the pattern's ``name`` for a matched Django URL,
``unmatched`` otherwise. Probe requests are counted but not logged unless ``ACCESS_LOG_PROBES=1``.
"""

from __future__ import annotations

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


def django_route(path: str, *, static_prefix: str = "/static/") -> str:
    """The route label of ``path`` (see the module docstring)."""
    if path in PROBE_PATHS:
        return "probe"
    if path.startswith(static_prefix):
        return "static"
    if path.startswith("/admin/") or path == "/admin":
        return "admin"
    from django.apps import apps

    if not apps.ready:  # an app other than Django behind gunicorn.conf.py (loadtests/bare_app.py)
        return "unmatched"
    from django.urls import Resolver404, resolve

    try:
        name = resolve(path).url_name
    except Resolver404:
        return "unmatched"
    return name or "unmatched"


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


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
                _record(scope, response, time.perf_counter() - started, request_id)
            except Exception:  # the response is already sent: a metric or log failure must not look like the app's
                logger.exception("request %s not recorded", request_id)
            REQUEST_ID.reset(token)

    def _record(scope: dict[str, Any], response: dict[str, int], seconds: float, request_id: str) -> None:
        path = scope["path"]
        route = route_of(path)
        method = scope["method"] if scope["method"] in METHODS else "other"
        metrics.record_request(method, route, response["status"], seconds)
        if access_log is not None and (log_probes or route != "probe"):
            client = scope.get("client")
            access_log.info(
                "access",
                extra={
                    "method": scope["method"],
                    "path": path,
                    "status": response["status"],
                    "duration_ms": seconds * 1000,
                    "bytes": response["bytes"],
                    "client_ip": client[0] if client else "-",
                    "request_id": request_id,
                },
            )

    return application
