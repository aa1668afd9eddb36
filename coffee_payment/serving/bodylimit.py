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

Time is bounded too: uvicorn has no timeout for a request body, so a client that declared 100 bytes and sent one
held its request open for as long as it kept the connection (seen: 40 s and counting). Each body message must
arrive within :data:`BODY_CHUNK_TIMEOUT_S` of the previous one, else 408 with the reason. (Behind ingress-nginx,
which buffers request bodies by default, a slow client never reaches us; this covers direct exposure.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings

ASGIApp = Callable[..., Any]
# Seconds allowed between two body messages of one request (a phone on a poor link sends a JSON body at once).
BODY_CHUNK_TIMEOUT_S = 30.0
# After a body is refused, what the client is still sending is read and dropped — at most this long and this much —
# before the 413 and the close: most clients write the whole body before they read, and closing a socket that has
# unread data sends a TCP reset, so they would see "connection reset" instead of the 413 (nginx: lingering close).
LINGER_S = 2.0
LINGER_MAX_BYTES = 16 * 1024 * 1024


def _declared_length(scope: dict[str, Any]) -> int | None:
    """The declared body length; 0 for a request with neither ``Content-Length`` nor ``Transfer-Encoding`` (no body
    in HTTP/1.1, RFC 9112 §6.3); None when the length is not declared (chunked)."""
    length = 0
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            length = int(value) if value.isdigit() else None  # uvicorn has validated it; be strict anyway
        elif name == b"transfer-encoding":
            return None
    return length


def too_large_body(limit: int) -> bytes:
    """The 413 body: the reason and the limit."""
    return json.dumps({"error": f"request body too large: the limit is {limit} bytes"}).encode()


async def _send_too_large(send: Callable, limit: int) -> None:
    await _send_refusal(send, 413, too_large_body(limit))


async def _send_refusal(send: Callable, status: int, body: bytes) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        # The rest of the body is never read: end the connection instead of draining it for keep-alive.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _linger(receive: Callable) -> None:
    """Read and drop the rest of a refused body, within :data:`LINGER_S` and :data:`LINGER_MAX_BYTES`."""
    dropped = 0
    try:
        async with asyncio.timeout(LINGER_S):
            while dropped <= LINGER_MAX_BYTES:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                dropped += len(message.get("body", b""))
    except TimeoutError:
        return


def bound_body(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` so that no HTTP request body above ``settings.DATA_UPLOAD_MAX_MEMORY_SIZE`` reaches it."""

    async def application(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE if scope["type"] == "http" else None
        if limit is None:
            await app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            if declared <= limit + LINGER_MAX_BYTES:  # a body that may well be on its way: take it, then answer
                await _linger(receive)
            await _send_too_large(send, limit)
            return
        if declared == 0:  # nothing to bound (every GET, the hot path): no wrapper cost
            await app(scope, receive, send)
            return
        received = 0
        cut = slow = body_done = False
        started = False

        async def bounded_receive() -> dict[str, Any]:
            nonlocal received, cut, slow, body_done
            if cut or slow:
                return {"type": "http.disconnect"}
            if body_done:  # Django's wait for a disconnect while the view runs: no bound
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), BODY_CHUNK_TIMEOUT_S)
            except TimeoutError:
                slow = True
                return {"type": "http.disconnect"}  # Django: RequestAborted, nothing sent
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > limit:
                    cut = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await app(scope, bounded_receive, tracked_send)
        if cut and not started:
            if not body_done:
                await _linger(receive)
            await _send_too_large(send, limit)
        elif slow and not started:
            reason = f"request body not received in time: more than {BODY_CHUNK_TIMEOUT_S:g} s between parts"
            await _send_refusal(send, 408, json.dumps({"error": reason}).encode())

    return application
