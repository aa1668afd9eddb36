"""``require_methods``: Django's ``require_http_methods`` for our endpoints, with the reason in the 405's body.

Django's decorator answers a wrong method with an empty 405 (only the ``Allow`` header says why); every refusal of
ours carries a reason (``{"error": ...}``, as the JSON endpoints' other 4xx do).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse


def _refusal(request: HttpRequest, methods: tuple[str, ...]) -> HttpResponse:
    allowed = ", ".join(methods)
    response = JsonResponse({"error": f"method {request.method} is not allowed here; allowed: {allowed}"}, status=405)
    response["Allow"] = allowed
    return response


def require_methods(*methods: str) -> Callable[[Callable], Callable]:
    """Let ``methods`` through to the view (sync or async); answer any other with 405, ``Allow`` and the reason."""

    def decorator(view: Callable) -> Callable:
        if iscoroutinefunction(view):

            @wraps(view)
            async def async_inner(request: HttpRequest, *args, **kwargs) -> HttpResponse:
                if request.method not in methods:
                    return _refusal(request, methods)
                return await view(request, *args, **kwargs)

            return async_inner

        @wraps(view)
        def inner(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                return _refusal(request, methods)
            return view(request, *args, **kwargs)

        return inner

    return decorator
