"""An ASGI app whose import takes a few seconds: a worker booting it is in the boot window long enough for a
test to deliver a signal there (tests/integration/test_gunicorn_signals.py).

The import spends its time compiling source with constant-folded expressions, as a worker importing Django
without a bytecode cache does (``2**31 - 4`` in django/http/multipartparser.py): CPython 3.11's constant
folder discards an exception raised there, so a signal handler that raises SystemExit would be swallowed.
"""

import os
import time

_SOURCE = "sizes = [2**31 - 4, 2**20 * 3, 10**6 // 7]\n" * 200
_until = time.monotonic() + float(os.environ.get("SLOW_BOOT_SECONDS", "3"))
while time.monotonic() < _until:
    compile(_SOURCE, "<slow boot>", "exec")


async def app(scope, receive, send):  # pragma: no cover - never reached by the test that uses it
    """Answer 200 to any HTTP request."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})
