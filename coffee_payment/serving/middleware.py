"""Django middleware answering the probes before Host validation, for ``manage.py runserver`` (WSGI).

Under gunicorn the ASGI wrapper (:func:`coffee_payment.serving.probes.wrap`) answers them before Django is
reached; this middleware gives the same answers when Django is the outermost layer. It must be first in
``MIDDLEWARE``: ``CommonMiddleware`` and ``SecurityMiddleware`` call ``request.get_host()``, which rejects a
probe sent to a pod IP with 400 (docs/serving.md §6).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse

from coffee_payment.serving.probes import WORKER_PID_HEADER, _Pid, probe_response


def _django_response(request: HttpRequest) -> HttpResponse | None:
    answer = probe_response(request.path, request.method or "GET")
    if answer is None:
        return None
    response = HttpResponse(
        b"" if request.method == "HEAD" else answer.body, status=answer.status, content_type="application/json"
    )
    response["Cache-Control"] = "no-store"
    response[WORKER_PID_HEADER] = _Pid.value.decode()
    for name, value in answer.headers:
        response[name] = value
    return response


class _EarlyAnswer:
    """A middleware that may answer (or refuse, by raising) before the rest of the stack: ``early(request)``
    returns a response or None to go on; sync and async."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def early(self, request: HttpRequest) -> HttpResponse | None:
        """The answer, or None to go on to the rest of the stack (the base answers nothing)."""
        return None

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self.__acall__(request)
        return self.early(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        """Async path (Django under ASGI without the wrapper)."""
        return self.early(request) or await self.get_response(request)  # type: ignore[misc]


class HealthMiddleware(_EarlyAnswer):
    """Answer ``/health``, ``/livez``, ``/readyz`` without the rest of the middleware stack; sync and async."""

    def early(self, request: HttpRequest) -> HttpResponse | None:
        return _django_response(request)


def _refuse_nul(request: HttpRequest) -> None:
    """A query parameter holding a NUL character is a 400: PostgreSQL text cannot hold one, so an admin list filter
    or lookup built from it (``?status=%00``) failed with DataError, a 500."""
    if any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()):
        raise BadRequest("NUL character in a query parameter")


class NulQueryMiddleware(_EarlyAnswer):
    """Answer 400 to a query string with a NUL character (``_refuse_nul``); sync and async."""

    def early(self, request: HttpRequest) -> HttpResponse | None:
        _refuse_nul(request)
        return None
