"""The worker's heartbeat after its event loop has ended (gunicorn/arbiter.py ``murder_workers``).

uvicorn stops notifying the arbiter when ``serve()`` returns, and gunicorn then closes the worker's heartbeat
file; but the process may live on: the interpreter joins the executor threads of sync views at exit
(concurrent.futures), and a thread blocked in the database holds it there. The arbiter would then see a stale
heartbeat and SIGABRT the worker ("WORKER TIMEOUT"), dropping whatever that thread was finishing. The
database-side statement/lock timeout ends such a thread; this heartbeat bridges the time until it does.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any


def heartbeat_until_exit(notify_fd: int, *, interval: float, budget: float, log: Any) -> threading.Thread:
    """Keep the arbiter's heartbeat file fresh from a daemon thread until the process exits, at most ``budget`` s.

    After ``serve()`` returns, gunicorn closes the worker's heartbeat file and the interpreter waits for the
    executor threads of sync views (concurrent.futures joins them at exit); a thread blocked in the database
    would let the arbiter see a stale heartbeat and SIGABRT the worker (WORKER TIMEOUT). ``notify_fd`` is a dup
    of the heartbeat file's descriptor (``os.utime`` on it is gunicorn's notify). Past ``budget`` the process
    logs the threads still running and exits 1 itself.
    """

    def beat() -> None:
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            now = time.monotonic()
            os.utime(notify_fd, (now, now))
            time.sleep(interval)
        busy = [
            t.name for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()
        ]  # the main thread is the one joining them
        log.error(
            "Worker %s still not exited %.0fs after its server stopped (threads: %s): exit 1", os.getpid(), budget, busy
        )
        os._exit(1)

    thread = threading.Thread(target=beat, name="heartbeat-until-exit", daemon=True)
    thread.start()
    return thread
