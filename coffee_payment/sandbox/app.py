"""The sandbox ASGI app: YooKassa v3, TBank v2 and Tmetr emulators on one origin (docs/domain.md §6).

Paths: ``/yookassa/v3/…``, ``/tbank/v2/…``, ``/tmetr/…`` (prefixes in :mod:`defaults`), the checkout page
``/_sandbox/checkout/{provider}/{payment_id}`` and the control endpoints under ``/_sandbox/``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from starlette.applications import Starlette

from coffee_payment.sandbox import checkout, control, tbank, tmetr, yookassa
from coffee_payment.sandbox.config import default_config, merge_config
from coffee_payment.sandbox.defaults import TBANK_PREFIX, TMETR_PREFIX, YOOKASSA_PREFIX
from coffee_payment.sandbox.state import SandboxState, utc_now_iso

_SERVICES = (("yookassa", YOOKASSA_PREFIX), ("tbank", TBANK_PREFIX), ("tmetr", TMETR_PREFIX))


class CallRecorder:
    """ASGI middleware recording every call to the emulated APIs with its ``X-Request-ID`` in ``state.calls``, so
    a test can follow one request of our server through every provider hop (``GET /_sandbox/calls``)."""

    def __init__(self, app: Any, state: SandboxState) -> None:
        self._app = app
        self._state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            service = next((name for name, prefix in _SERVICES if scope["path"].startswith(prefix)), None)
            if service is not None:
                request_id = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1") or None
                self._state.calls.append(
                    {
                        "service": service,
                        "method": scope["method"],
                        "path": scope["path"],
                        "request_id": request_id,
                        "received_at": utc_now_iso(),
                    }
                )
        await self._app(scope, receive, send)


def create_app(
    config: Mapping[str, Any] | None = None,
    *,
    notify_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """Build a sandbox app; its state lives in memory on ``app.state.sandbox`` (:class:`SandboxState`).

    ``config`` holds any keys accepted by ``POST /_sandbox/config`` on top of :func:`default_config`; it is
    also what ``POST /_sandbox/reset`` restores. ``notify_transport`` routes notification deliveries
    (tests pass ``httpx.ASGITransport(receiver_app)``); by default they go over the network.
    Raises :class:`~coffee_payment.sandbox.config.ConfigError` on an invalid ``config``.
    """
    state = SandboxState(merge_config(default_config(), config or {}), notify_transport)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await state.aclose()

    app = Starlette(
        routes=[
            *yookassa.routes(),
            *tbank.routes(),
            *tmetr.routes(),
            *checkout.routes(),
            *control.routes(),
        ],
        lifespan=lifespan,
    )
    app.state.sandbox = state
    app.add_middleware(CallRecorder, state=state)
    return app
