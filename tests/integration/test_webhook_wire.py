"""The webhooks on the wire, through gunicorn + Uvicorn workers (breaker pass): bodies that only a real HTTP server
sees — chunked transfer encoding (no Content-Length), a Content-Length that lies, form-encoded and empty bodies,
a huge chunked body — each get a 4xx or the provider's success answer, never a 5xx, and the server keeps serving."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.timeout(120)

PATHS = ("/v1/yook-pay-webhook", "/v1/tbank-webhook")


def _raw(base_url: str, request: bytes, *, read_timeout: float = 15) -> bytes:
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=read_timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
            if b"\r\n\r\n" in b"".join(chunks) and b"Connection: close" not in request:
                # enough for the status line
                break
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def _chunked(body: bytes, size: int = 7) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


@pytest.mark.parametrize("path", PATHS)
def test_odd_bodies_on_the_wire_are_4xx_never_5xx(stack, app, path):
    head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n".encode()
    notification = b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "nope"}}'
    cases = {
        "chunked json": head
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + _chunked(notification),
        "chunked 3 MB": head
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + _chunked(b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}', size=65536),
        "form": head
        + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 23\r\n\r\n"
        + b"TerminalKey=x&Status=OK",
        "empty": head + b"Content-Type: application/json\r\nContent-Length: 0\r\n\r\n",
        "no content type": head + b"Content-Length: 2\r\n\r\n{}",
        "array": head + b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n[]",
        "latin-1": head + b'Content-Type: application/json; charset=latin-1\r\nContent-Length: 5\r\n\r\n"\xe9t\xe9"',
    }
    for name, request in cases.items():
        answer = _raw(stack.base_url, request)
        # A chunked notification is read whole: YooKassa's about no payment of ours is a 200, TBank's shape a 400.
        expected = (200, 400) if name == "chunked json" else range(400, 500)
        assert _status(answer) in expected, (name, answer[:300])
    # A Content-Length longer than the body: the server waits, then the client gives up; no 5xx, still serving.
    short = head + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{}"
    answer = _raw(stack.base_url, short, read_timeout=3)
    assert not (500 <= _status(answer) < 600), answer[:300]
    assert app.get("/health").status_code == 200
