"""A lean Django handler for the customer paths (``/v1/…``) under ASGI.

Why: Django's built-in middleware are ``MiddlewareMixin`` classes; under ASGI each one runs its
``process_request``/``process_response`` through ``sync_to_async`` (django/utils/deprecation.py ``__acall__``),
so the default stack costs a dozen thread hops per request — measured here as most of the CPU of a status-JSON
poll. The customer paths need no session, auth, messages or CSRF (the JSON API is ``csrf_exempt``; the order id
is the capability), so they get a handler whose middleware chain is async-native: host validation and the
security headers of ``SecurityMiddleware``/``XFrameOptionsMiddleware``. ``/admin/`` and everything else keep the
full ``settings.MIDDLEWARE``; so does runserver (WSGI), which serves every path through the full stack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
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


class LeanASGIHandler(ASGIHandler):
    """Django's ASGI handler with ``settings.LEAN_MIDDLEWARE`` (async-native only) instead of ``MIDDLEWARE``."""

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
