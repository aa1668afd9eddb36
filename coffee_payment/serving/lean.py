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
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.utils.module_loading import import_string

LEAN_PREFIX = "/v1/"


class LeanSecurityMiddleware:
    """Async-native subset of SecurityMiddleware + CommonMiddleware host check + XFrameOptionsMiddleware:
    validates the Host (DisallowedHost → 400 through Django's exception handling), redirects to HTTPS when
    ``SECURE_SSL_REDIRECT``, and sets nosniff, Referrer-Policy, COOP, X-Frame-Options and HSTS headers."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        host = request.get_host()  # raises DisallowedHost for a host outside ALLOWED_HOSTS
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            return HttpResponsePermanentRedirect(f"https://{host}{request.get_full_path()}")
        response = await self.get_response(request)
        if settings.SECURE_HSTS_SECONDS and request.is_secure():
            response.headers.setdefault("Strict-Transport-Security", f"max-age={settings.SECURE_HSTS_SECONDS}")
        if settings.SECURE_CONTENT_TYPE_NOSNIFF:
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if settings.SECURE_REFERRER_POLICY:
            response.headers.setdefault("Referrer-Policy", settings.SECURE_REFERRER_POLICY)
        if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
            response.headers.setdefault("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY)
        response.headers.setdefault("X-Frame-Options", settings.X_FRAME_OPTIONS)
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
            handler = convert_exception_to_response(middleware(handler))
        self._middleware_chain = handler


def route(full_app, lean_app):
    """ASGI app sending HTTP requests under ``/v1/`` to ``lean_app`` and everything else to ``full_app``."""

    async def application(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(LEAN_PREFIX):
            await lean_app(scope, receive, send)
        else:
            await full_app(scope, receive, send)

    return application
