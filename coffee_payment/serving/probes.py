"""Health probes answered in front of Django: no middleware, no Host validation, no database, no I/O.

Paths (GET or HEAD; other methods → 405):

* ``/health`` — 200 ``{"status":"ok"}`` always while the process serves (the long-standing contract).
* ``/livez``  — liveness: 200 ``{"status":"ok"}``. Answered on the worker's event loop, so it never waits
  for a thread or the database; if the loop is blocked, gunicorn's heartbeat kills the worker anyway.
* ``/readyz`` — readiness: 200 ``{"status":"ok"}``, or 503 ``{"status":"draining"}`` while this worker is
  shutting down (TERM/INT/QUIT or max-requests recycling) or while the drain file named by
  ``SERVING_DRAIN_FILE`` exists (a Kubernetes ``preStop`` can ``touch`` it).

``SERVING_TEST_ENDPOINTS=1`` (tests and drills only) adds ``GET /_test/sleep?seconds=S`` (0 ≤ S ≤ 120):
``await asyncio.sleep(S)``, then 200 ``{"slept": S, "worker_pid": pid}``.

Every response passing through :func:`wrap` carries ``X-Worker-Pid``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from coffee_payment.env import parse_bool
from coffee_payment.serving.env import parse_path

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEALTH_PATH = "/health"
LIVENESS_PATH = "/livez"
READINESS_PATH = "/readyz"
TEST_SLEEP_PATH = "/_test/sleep"
MAX_TEST_SLEEP = 120.0
WORKER_PID_HEADER = "X-Worker-Pid"

_OK = b'{"status":"ok"}'
_DRAINING = b'{"status":"draining"}'


class _Pid:
    """This process's pid as header bytes, refreshed after fork (gunicorn forks workers from the master)."""

    value: bytes = str(os.getpid()).encode()

    @classmethod
    def refresh(cls) -> None:
        cls.value = str(os.getpid()).encode()


os.register_at_fork(after_in_child=_Pid.refresh)


def worker_pid_header() -> tuple[bytes, bytes]:
    """The ``x-worker-pid`` header as an ASGI (name, value) pair."""
    return (b"x-worker-pid", _Pid.value)


@dataclass
class DrainState:
    """Whether this process should fail readiness.

    ``shutting_down`` is set by the worker when its server begins to shut down; ``drain_file`` is checked with
    one ``stat`` per readiness probe.
    """

    drain_file: str | None = None
    shutting_down: bool = False
    shutting_down_at: float | None = None  # time.monotonic() when the drain began (coffee_worker_drain_seconds)

    def draining(self) -> bool:
        """True while shutting down or while the drain file exists."""
        return self.shutting_down or (self.drain_file is not None and os.path.exists(self.drain_file))


@dataclass(frozen=True)
class ProbeResponse:
    """A probe answer, independent of ASGI or Django."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=())


def _state_from_env() -> DrainState:
    return DrainState(drain_file=parse_path(os.environ, "SERVING_DRAIN_FILE"))


STATE = _state_from_env()


def mark_shutting_down() -> None:
    """Called by the worker when its server starts shutting down: readiness answers 503 from now on."""
    STATE.shutting_down = True
    if STATE.shutting_down_at is None:
        STATE.shutting_down_at = time.monotonic()


def probe_response(path: str, method: str, state: DrainState | None = None) -> ProbeResponse | None:
    """The answer for a probe path, or None if ``path`` is not a probe (the request goes to Django)."""
    if path not in (HEALTH_PATH, LIVENESS_PATH, READINESS_PATH):
        return None
    if method not in ("GET", "HEAD"):
        return ProbeResponse(405, b'{"status":"method not allowed"}', (("Allow", "GET, HEAD"),))
    if path == READINESS_PATH and (state or STATE).draining():
        return ProbeResponse(503, _DRAINING)
    return ProbeResponse(200, _OK)


async def _send_response(send: Send, response: ProbeResponse, *, head: bool) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(response.body)).encode()),
        (b"cache-control", b"no-store"),
        worker_pid_header(),
        *((name.lower().encode(), value.encode()) for name, value in response.headers),
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body})


def _sleep_seconds(query_string: bytes) -> float | None:
    values = parse_qs(query_string.decode("latin-1")).get("seconds", [])
    if len(values) != 1:
        return None
    try:
        seconds = float(values[0])
    except ValueError:
        return None
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_TEST_SLEEP:
        return None
    return seconds


async def _test_sleep(scope: Scope, send: Send) -> None:
    seconds = _sleep_seconds(scope.get("query_string", b""))
    if seconds is None:
        body = json.dumps({"error": f"seconds must be a number in 0..{MAX_TEST_SLEEP:g}"}).encode()
        await _send_response(send, ProbeResponse(400, body), head=False)
        return
    await asyncio.sleep(seconds)
    body = json.dumps({"slept": seconds, "worker_pid": os.getpid()}).encode()
    await _send_response(send, ProbeResponse(200, body), head=scope["method"] == "HEAD")


def wrap(app: ASGIApp, *, test_endpoints: bool | None = None, state: DrainState | None = None) -> ASGIApp:
    """Put the probes (and, if enabled, the test endpoint) in front of ``app``; add ``X-Worker-Pid``.

    ``test_endpoints`` defaults to ``SERVING_TEST_ENDPOINTS`` (a boolean; production leaves it unset).
    Non-HTTP scopes (lifespan, websocket) pass through untouched.
    """
    if test_endpoints is None:
        test_endpoints = parse_bool(os.environ, "SERVING_TEST_ENDPOINTS", default=False)

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path = scope["path"]
        response = probe_response(path, scope["method"], state)
        if response is not None:
            await _send_response(send, response, head=scope["method"] == "HEAD")
            return
        if test_endpoints and path == TEST_SLEEP_PATH:
            await _test_sleep(scope, send)
            return

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), worker_pid_header()]}
            await send(message)

        await app(scope, receive, send_with_pid)

    return application
