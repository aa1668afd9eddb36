"""One shared ``httpx.AsyncClient`` per event loop (per worker process under uvicorn).

Under gunicorn + UvicornWorker each worker has one long-lived loop, so each worker gets one pooled client. Under
``runserver`` (WSGI) Django runs each async view on a short-lived loop; the entry dies with its loop.
Tests inject a transport with ``set_transport``.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()
_transport: httpx.AsyncBaseTransport | None = None


def shared_client() -> httpx.AsyncClient:
    """The client of the running loop, created lazily. Per-request timeouts are passed by each caller."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            transport=_transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            headers={"User-Agent": "coffee-payment/0.1"},
        )
        _clients[loop] = client
    return client


def set_transport(transport: httpx.AsyncBaseTransport | None) -> None:
    """Route every new shared client through ``transport`` (tests); ``None`` restores real networking."""
    global _transport
    _transport = transport
    _clients.clear()
