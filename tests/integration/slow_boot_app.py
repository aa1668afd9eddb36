"""An ASGI app whose import takes a few seconds: a worker booting it is in the boot window long enough for a
test to deliver a signal there (tests/integration/test_gunicorn_signals.py)."""

import os
import time

time.sleep(float(os.environ.get("SLOW_BOOT_SECONDS", "3")))


async def app(scope, receive, send):  # pragma: no cover - never reached by the test that uses it
    """Answer 200 to any HTTP request."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})
