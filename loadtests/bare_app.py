"""The smallest ASGI app answering ``/health`` like our probes do: the ceiling a worker class allows.

``gunicorn -c gunicorn.conf.py loadtests.bare_app:app`` (same worker class, same settings as the real app): wrk
against it measures the server + worker alone; against the real app's ``/health`` it measures our probes wrapper
on top. The load runner compares the two (target: the app's /health ≥ 50 % of this ceiling).
"""

from __future__ import annotations

import os
from typing import Any

_BODY = b'{"status":"ok"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """200 ``{"status":"ok"}`` with ``X-Worker-Pid`` for any HTTP request; lifespan is acknowledged."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_BODY)).encode()),
                (b"x-worker-pid", str(os.getpid()).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _BODY})
