"""A lean Django handler for the customer paths (``/v1/…``) under ASGI.

Why: Django's built-in middleware are ``MiddlewareMixin`` classes; under ASGI each one runs its
``process_request``/``process_response`` through ``sync_to_async`` (django/utils/deprecation.py ``__acall__``),
so the default stack costs a dozen thread hops per request — measured here as most of the CPU of a status-JSON
poll. The customer paths need no session, auth, messages or CSRF (the JSON API is ``csrf_exempt``; the order id
is the capability), so they get a handler whose middleware chain is async-native: host validation and the
security headers of ``SecurityMiddleware``/``XFrameOptionsMiddleware``. ``/admin/`` and everything else keep the
full ``settings.MIDDLEWARE``; so does runserver (WSGI), which serves every path through the full stack.

The lean handler also lends each request a reused thread for its sync work (:class:`RequestThreads`) instead
of Django's new thread per request, and a request that left nothing on that thread (the status JSON: its one read
is a :func:`coffee_payment.dbsteps.run_read` on a shared read executor) sends ``request_started`` and
``request_finished`` inline instead of hopping to the thread for them. Starting and joining the thread and the
two signal hops were the largest costs of a status poll after the middleware hops (docs/performance.md, "Profile
of the status JSON").
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.cache import close_caches
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import reset_urlconf
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections, reset_queries
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import set_script_prefix
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.module_loading import import_string

LEAN_PREFIX = "/v1/"


class LeanSecurityMiddleware(SecurityMiddleware):
    """Django's ``SecurityMiddleware`` and ``XFrameOptionsMiddleware`` without the thread hops: their hooks do no
    I/O, so they are called directly from an async ``__call__`` (settings read once, every ``SECURE_*`` option
    honoured). The Host is validated first, as ``CommonMiddleware`` does in the full stack (DisallowedHost → 400
    through Django's exception handling)."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        super().__init__(get_response)
        self.x_frame_options = XFrameOptionsMiddleware(get_response)
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        request.get_host()  # raises DisallowedHost for a host outside ALLOWED_HOSTS
        response = self.process_request(request) or await self.get_response(request)
        response = self.process_response(request, response)
        return self.x_frame_options.process_response(request, response)


class LeanLocaleMiddleware:
    """``LocaleMiddleware`` for the lean handler: the language from the ``django_language`` cookie or
    ``Accept-Language`` (``LANGUAGE_CODE`` = ``ru`` otherwise), activated for the request (a context-local, so the
    views' ``sync_to_async`` threads see it), ``Content-Language`` and ``Vary: Accept-Language`` on the response.
    Pure in-memory work called inline: no thread hop (``get_language_from_request`` caches its lookups)."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        language = translation.get_language_from_request(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        try:
            response = await self.get_response(request)
        finally:
            translation.deactivate()
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", language)
        return response


class RequestExecutor(ThreadPoolExecutor):
    """A request's single thread for its sync code; ``used`` turns True when the request submits a call there
    (a call may leave a database connection on it)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="request")
        self.used = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self.used = True
        return super().submit(fn, *args, **kwargs)


class RequestThreads:
    """A worker process's idle request threads: single-thread executors lent to one request at a time.

    Django's ``ASGIHandler`` enters ``ThreadSensitiveContext()`` per request, so asgiref starts a new thread for
    the request's first ``sync_to_async`` call and joins it at the end — about 0.5 ms of CPU per request here,
    more than the status JSON's whole database read. asgiref ≥ 3.13 takes a caller-owned executor instead
    (``ThreadSensitiveContext(executor=…)``, not shut down on exit), so a request still runs all its sync code on
    one thread of its own, as Django's thread-sensitive rules require, but the thread is reused.

    Only a request that completed normally gives its executor back. Django's ``handle`` ends with a hop into that
    thread (``response.close`` sends ``request_finished``, which returns the database connection to the pool), so
    by then every call the request queued there has finished. A request that raised or was cancelled may still
    have a call running there, so its executor is shut down (without waiting) instead. At most ``keep`` idle
    executors are kept (one per concurrently served request, up to that number). Used from the event loop's
    thread only, so no lock."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self._idle: list[RequestExecutor] = []

    def borrow(self) -> RequestExecutor:
        """An idle executor marked unused, or a new one (its thread starts on first use)."""
        executor = self._idle.pop() if self._idle else RequestExecutor()
        executor.used = False
        return executor

    def give_back(self, executor: RequestExecutor) -> None:
        """Keep ``executor`` for the next request, or shut it down when ``keep`` are idle already."""
        if len(self._idle) < self.keep:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)

    def idle(self) -> int:
        """Executors waiting for a request."""
        return len(self._idle)


# The receivers Django itself connects to the request signals. Each acts only on the calling thread's database
# connections or on context-local state, so on the event loop's thread — which never holds a connection (Django
# refuses sync database calls there) — they are no-ops on connections, done without a hop.
INLINE_RECEIVERS = {
    signals.request_started: frozenset({reset_queries, close_old_connections}),
    signals.request_finished: frozenset({close_old_connections, close_caches, reset_urlconf}),
}
_EXECUTOR: contextvars.ContextVar[RequestExecutor] = contextvars.ContextVar("lean_request_executor")


def serving_lean_request() -> bool:
    """True inside a request served by the lean handler (``dbsteps.run_read`` then reads off the request thread)."""
    return _EXECUTOR.get(None) is not None


def signal_is_inline_safe(signal: signals.Signal, sender: type) -> bool:
    """True when every live receiver of ``signal`` for ``sender`` is one of Django's own (INLINE_RECEIVERS): then
    sending it on the event loop's thread is what a hop to a request thread without connections would do. A
    receiver added by anyone else (an app, a test) makes it False, and the handler hops as Django does."""
    sync_receivers, async_receivers = signal._live_receivers(sender)  # Django 5.x: (sync, async) lists
    return not async_receivers and set(sync_receivers) <= INLINE_RECEIVERS[signal]


class LeanASGIHandler(ASGIHandler):
    """Django's ASGI handler with ``settings.LEAN_MIDDLEWARE`` (async-native only) instead of ``MIDDLEWARE``, each
    request's sync code on a reused thread (:class:`RequestThreads`), and the request signals sent inline when
    the request left nothing on that thread (:meth:`handle`)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads = RequestThreads()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # as Django's ASGIHandler.__call__
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.threads.borrow()
        token = _EXECUTOR.set(executor)
        try:
            async with ThreadSensitiveContext(executor=executor):
                try:
                    await self.handle(scope, receive, send)
                except BaseException:
                    executor.shutdown(wait=False)  # a call of this request may still be running on it
                    raise
        finally:
            _EXECUTOR.reset(token)
        self.threads.give_back(executor)

    async def handle(self, scope, receive, send):
        """Django 5.2's ``ASGIHandler.handle``, step for step, except where it sends the request signals: while
        the request has left nothing on its thread (``RequestExecutor.used``) and only Django's own receivers
        listen (:func:`signal_is_inline_safe`), ``request_started`` and ``response.close()`` (which sends
        ``request_finished``) run inline. Once the request has used its thread, they hop there as in Django, so
        that thread's connection goes back to the pool."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        if self._inline(signals.request_started):
            signals.request_started.send(sender=self.__class__, scope=scope)
        else:
            await signals.request_started.asend(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            await self._close(error_response)
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # client disconnected during send_response
            return response

        # Catch a disconnect while getting the response (listen_for_disconnect first: see Django's handle).
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            await self._close(response)
        body_file.close()

    def _inline(self, signal: signals.Signal) -> bool:
        """Whether ``signal`` may be sent on the loop's thread now (see :meth:`handle`). Never with ``DEBUG``: the
        connections then log their queries, and ``request_started``'s ``reset_queries`` must run on the request's
        thread — a reused one, whose connection would otherwise carry every earlier request's queries."""
        executor = _EXECUTOR.get(None)
        return (
            executor is not None
            and not executor.used
            and not settings.DEBUG
            and signal_is_inline_safe(signal, self.__class__)
        )

    async def _close(self, response: HttpResponse) -> None:
        """``response.close()`` — it sends ``request_finished`` — inline or on the request's thread."""
        if self._inline(signals.request_finished):
            response.close()
        else:
            await sync_to_async(response.close)()

    def load_middleware(self, is_async: bool = False) -> None:
        # Mirrors BaseHandler.load_middleware for async-native middleware (no mode adaptation needed).
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response_async)
        for path in reversed(settings.LEAN_MIDDLEWARE):
            middleware = import_string(path)
            if not getattr(middleware, "async_capable", False):
                raise TypeError(f"{path} in LEAN_MIDDLEWARE must be async-capable")
            instance = middleware(handler)
            if hasattr(instance, "process_exception"):
                # Called by Django only when a view raised (e.g. coffee_payment.dbtimeouts: 503 on a DB timeout).
                self._exception_middleware.insert(0, instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler


def route(full_app, lean_app):
    """ASGI app sending HTTP requests under ``/v1/`` to ``lean_app`` and everything else to ``full_app``."""

    async def application(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(LEAN_PREFIX):
            await lean_app(scope, receive, send)
        else:
            await full_app(scope, receive, send)

    return application
