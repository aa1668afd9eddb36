"""A database statement that hit its bound answers 503 with a reason, never 500 (issue 9 item 6).

The bounds: PostgreSQL ``statement_timeout`` and ``lock_timeout`` (connection options, ``DB_STATEMENT_TIMEOUT_S``
/ ``DB_LOCK_TIMEOUT_S``), the psycopg pool's wait for a connection (``DB_POOL_TIMEOUT_S``) and SQLite's busy
timeout (``SQLITE_BUSY_TIMEOUT_S``). Django wraps each in ``django.db.OperationalError``; the driver's error is
its ``__cause__`` (PostgreSQL SQLSTATE 57014 query_canceled, 55P03 lock_not_available). Any other database
error stays a 500: it is a bug or an outage, not a busy moment.

:class:`DatabaseTimeoutMiddleware` turns the exception into a response in ``process_exception`` (no per-request
cost: Django calls it only when a view raised). JSON ``{"error": …, "reason": …}`` unless the client asked
for HTML; ``Retry-After: 1``. The webhooks catch ``DatabaseError`` themselves and answer 503 so the provider
retries (``coffee_payment/payments/views.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

_SQLSTATE_REASONS = {"57014": "statement_timeout", "55P03": "lock_timeout"}
_SQLITE_BUSY = ("database is locked", "database table is locked")
MESSAGE = "The service is busy. Please try again in a moment."


def timeout_reason(exc: BaseException) -> str | None:
    """``statement_timeout`` / ``lock_timeout`` / ``pool_timeout`` / ``sqlite_busy`` when ``exc`` is a database
    error caused by one of the bounds; None for anything else."""
    if not isinstance(exc, OperationalError):
        return None
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate in _SQLSTATE_REASONS:
        return _SQLSTATE_REASONS[sqlstate]
    if type(cause).__name__ == "PoolTimeout":  # psycopg_pool.PoolTimeout, without importing psycopg_pool
        return "pool_timeout"
    if any(text in str(exc) for text in _SQLITE_BUSY):
        return "sqlite_busy"
    return None


def timeout_response(request: HttpRequest, reason: str) -> HttpResponse:
    """The 503 for a request whose database work hit ``reason``: JSON unless the client prefers HTML."""
    if "text/html" in request.headers.get("Accept", ""):
        response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
    else:
        response = JsonResponse({"error": MESSAGE, "reason": f"database {reason}"}, status=503)
    response["Retry-After"] = "1"
    return response


class DatabaseTimeoutMiddleware:
    """``process_exception`` only: 503 for a database bound hit, nothing for any other exception. Sync and async."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """503 with the reason when ``exception`` is a database bound hit; None lets Django handle the rest."""
        reason = timeout_reason(exception)
        if reason is None:
            return None
        logger.warning("%s %s: database %s, answered 503 (%s)", request.method, request.path, reason, exception)
        return timeout_response(request, reason)
