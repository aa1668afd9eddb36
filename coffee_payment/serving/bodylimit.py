"""A bound on request bodies, in front of Django: 413 with a reason instead of reading what no view accepts.

Why: Django's ``ASGIHandler.read_body`` reads the whole body before anything else looks at the request, spooling
it to a temporary file past ``FILE_UPLOAD_MAX_MEMORY_SIZE`` with no limit at all; ``DATA_UPLOAD_MAX_MEMORY_SIZE``
is only checked later, by ``request.body`` (a ``RequestDataTooBig``: a bare English 400 page and an ERROR
traceback). So a ``Content-Length: 10000000000`` request held its connection until the client gave up, and a
chunked multi-GB body filled the disk — on any path, the admin login included. Here a declared length above the
limit is answered at once, and a streamed body is cut when it passes the limit (Django then sees a disconnect
and answers nothing; this layer answers). The limit is ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (Django's default
2.5 MB, far above any body we accept: a notification is refused above ``NOTIFICATION_MAX_BODY_BYTES``, 64 KB
by default, by the inbox itself); ``None`` turns the bound off, as in Django.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings

ASGIApp = Callable[..., Any]


def _declared_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None  # uvicorn has validated it; be strict anyway
    return None


def too_large_body(limit: int) -> bytes:
    """The 413 body: the reason and the limit."""
    return json.dumps({"error": f"request body too large: the limit is {limit} bytes"}).encode()


async def _send_too_large(send: Callable, limit: int) -> None:
    body = too_large_body(limit)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        # The rest of the body is never read: end the connection instead of draining it for keep-alive.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bound_body(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` so that no HTTP request body above ``settings.DATA_UPLOAD_MAX_MEMORY_SIZE`` reaches it."""

    async def application(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE if scope["type"] == "http" else None
        if limit is None:
            await app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _send_too_large(send, limit)
            return
        received = 0
        cut = False
        started = False

        async def bounded_receive() -> dict[str, Any]:
            nonlocal received, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut = True
                    return {"type": "http.disconnect"}  # Django: RequestAborted, nothing sent
            return message

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await app(scope, bounded_receive, tracked_send)
        if cut and not started:
            await _send_too_large(send, limit)

    return application
