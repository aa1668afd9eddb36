"""One shared ``httpx.AsyncClient`` per event loop (per worker process under uvicorn).

Under gunicorn + UvicornWorker each worker has one long-lived loop, so each worker gets one pooled client. Under
``runserver`` (WSGI) Django runs each async view on a short-lived loop; the entry dies with its loop.
Tests inject a transport with ``set_transport``. Every call goes through
:class:`~coffee_payment.monitoring.outbound.ObservedTransport` (``X-Request-ID`` + the outbound duration metric).
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

from coffee_payment.monitoring.outbound import ObservedTransport

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()
_transport: httpx.AsyncBaseTransport | None = None
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def shared_client() -> httpx.AsyncClient:
    """The client of the running loop, created lazily. Per-request timeouts are passed by each caller."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            # A client given a transport ignores its own ``limits``: they go on the inner transport.
            transport=ObservedTransport(_transport or httpx.AsyncHTTPTransport(limits=_LIMITS)),
            headers={"User-Agent": "coffee-payment/0.1"},
        )
        _clients[loop] = client
    return client


def set_transport(transport: httpx.AsyncBaseTransport | None) -> None:
    """Route every new shared client through ``transport`` (tests); ``None`` restores real networking."""
    global _transport
    _transport = transport
    _clients.clear()
