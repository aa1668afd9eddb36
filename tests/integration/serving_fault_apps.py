"""ASGI apps for serving fault tests (tests/integration/test_gunicorn_faults.py).

``raising`` fails at import, as a broken deploy (a bad setting, a missing module) does. ``blocking:app`` is the
project's application plus ``GET /_test/block?seconds=S``, which blocks the worker's event loop with
``time.sleep`` — an ``async def`` view calling blocking code — after writing its pid to ``$BLOCK_MARKER``.
"""

import os
import time
from urllib.parse import parse_qs

from coffee_payment.asgi import application


async def app(scope, receive, send):
    """The project's app, plus the loop-blocking test endpoint."""
    if scope["type"] == "http" and scope["path"] == "/_test/block":
        seconds = float(parse_qs(scope["query_string"].decode()).get("seconds", ["1"])[0])
        marker = os.environ.get("BLOCK_MARKER")
        if marker:
            with open(marker, "w") as f:
                f.write(str(os.getpid()))
        time.sleep(seconds)  # blocks the event loop: no heartbeat, no other request on this worker
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"blocked"})
        return
    await application(scope, receive, send)
