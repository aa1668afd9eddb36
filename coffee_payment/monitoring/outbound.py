"""Outbound calls to YooKassa, TBank and Tmetr: request id header and duration metric, in one httpx transport.

:class:`ObservedTransport` wraps the shared client's transport (``coffee_payment/integrations/http.py``), so
every provider module is covered without changes: each request gets ``X-Request-ID`` (the current request's id,
or a fresh one outside a request — management commands) and one observation of
``coffee_outbound_request_duration_seconds{service,operation,outcome}``.

``service`` comes from the URL prefix (settings ``YOOKASSA_API_URL``, ``TBANK_API_URL``, ``TMETR_API_URL``);
``operation`` from a fixed table of the calls we make (anything else is ``other``, so the label stays bounded).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx

from coffee_payment.monitoring import metrics
from coffee_payment.monitoring.requestid import HEADER, current_request_id, new_request_id

# (service, method, path relative to the service's base URL) → operation.
OPERATIONS: dict[str, tuple[tuple[str, re.Pattern[str], str], ...]] = {
    "yookassa": (
        ("POST", re.compile(r"payments"), "create_payment"),
        ("GET", re.compile(r"payments/[^/]+"), "get_payment"),
        ("POST", re.compile(r"payments/[^/]+/capture"), "capture_payment"),
        ("POST", re.compile(r"payments/[^/]+/cancel"), "cancel_payment"),
        ("POST", re.compile(r"refunds"), "create_refund"),
    ),
    "tbank": (
        ("POST", re.compile(r"Init"), "create_payment"),
        ("POST", re.compile(r"GetState"), "get_payment"),
        ("POST", re.compile(r"CheckOrder"), "check_order"),
        ("POST", re.compile(r"Confirm"), "capture_payment"),
        ("POST", re.compile(r"Cancel"), "cancel_payment"),
    ),
    "tmetr": (
        ("POST", re.compile(r"api/ui/v1/static/drink"), "drink_price"),
        ("POST", re.compile(r"api/ui/v1/stat/heartbeat/recent"), "last_heartbeat"),
        ("POST", re.compile(r"api/commander/v1/command/make"), "make"),
    ),
}


def django_services() -> dict[str, str]:
    """Service name → base URL, from Django settings."""
    from django.conf import settings

    return {"yookassa": settings.YOOKASSA_API_URL, "tbank": settings.TBANK_API_URL, "tmetr": settings.TMETR_API_URL}


def classify(url: str, method: str, services: dict[str, str]) -> tuple[str, str]:
    """(service, operation) of a call; ("other", "other") for a URL under none of ``services``."""
    for service, base in services.items():
        base = base if base.endswith("/") else base + "/"
        if url.startswith(base):
            relative = url[len(base) :].split("?", 1)[0]
            for verb, pattern, operation in OPERATIONS.get(service, ()):
                if verb == method and pattern.fullmatch(relative):
                    return service, operation
            return service, "other"
    return "other", "other"


def outcome_of_status(status: int) -> str:
    """ok (< 400), client_error (4xx), server_error (5xx)."""
    if status >= 500:
        return "server_error"
    return "client_error" if status >= 400 else "ok"


class ObservedTransport(httpx.AsyncBaseTransport):
    """An httpx transport adding ``X-Request-ID`` and timing every call of ``inner``."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, services: Callable[[], dict[str, str]] = django_services
    ) -> None:
        self._inner = inner
        self._services = services

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the inner transport; record the outcome even when it raises."""
        request.headers[HEADER] = current_request_id() or new_request_id()
        service, operation = classify(str(request.url), request.method, self._services())
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await self._inner.handle_async_request(request)
            outcome = outcome_of_status(response.status_code)
            return response
        except httpx.TimeoutException:
            outcome = "timeout"
            raise
        finally:
            metrics.record_outbound(service, operation, outcome, time.perf_counter() - started)

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()
