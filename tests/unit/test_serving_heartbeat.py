"""The heartbeat after the event loop: notifies until the process exits; past its budget, exit 1 with a log."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.timeout(30)

_CHILD = textwrap.dedent(
    """
    import logging, os, sys, tempfile, threading, time
    from coffee_payment.serving.heartbeat import heartbeat_until_exit

    logging.basicConfig(stream=sys.stdout, format="%(message)s")
    fd, _ = tempfile.mkstemp()
    os.utime(fd, (0, 0))  # a beat sets time.monotonic() (gunicorn's notify): seconds since boot, > 0
    heartbeat_until_exit(os.dup(fd), interval=0.05, budget=float(sys.argv[1]), log=logging.getLogger("w"))
    # A thread the interpreter must join at exit, like a sync view's executor thread blocked in the database.
    threading.Thread(target=time.sleep, args=(float(sys.argv[2]),), name="blocked-in-db").start()
    time.sleep(0.3)
    print("beats", os.fstat(fd).st_mtime > 0, flush=True)
    """
)


def _run(budget: float, blocked: float) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(budget), str(blocked)], capture_output=True, text=True, timeout=20
    )
    return done, time.monotonic() - started


def test_blocked_thread_that_ends_in_time_exits_normally_while_the_heartbeat_goes_on():
    done, _ = _run(budget=10, blocked=1)
    assert done.returncode == 0, done.stderr
    assert "beats True" in done.stdout


def test_past_its_budget_the_process_logs_the_threads_and_exits_1():
    done, elapsed = _run(budget=1, blocked=15)
    assert done.returncode == 1, done.stderr
    assert "still not exited 1s after its server stopped (threads: ['blocked-in-db']): exit 1" in done.stdout
    assert elapsed < 10
