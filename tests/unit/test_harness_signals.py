"""A harness stopped with TERM (``timeout``, a CI runner, ``kill``) still stops the servers it started:
``devtools.launch.interrupt_on_stop_signals`` turns TERM into KeyboardInterrupt, so its cleanup runs. Without it
the load runner, killed mid-run, left its gunicorn, runserver, sandbox and locust processes behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devtools.launch import wait_until

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]

HARNESS = textwrap.dedent(
    """
    import contextlib, subprocess, sys, time
    from devtools.launch import interrupt_on_stop_signals
    if "--handled" in sys.argv:
        interrupt_on_stop_signals()
    with contextlib.ExitStack() as resources:
        server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        resources.callback(server.kill)
        print(server.pid, flush=True)
        time.sleep(60)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie (killed, not yet reaped by init) counts as gone
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("handled", [True, False])
def test_term_runs_the_harness_cleanup_only_when_handled(handled: bool) -> None:
    argv = [sys.executable, "-c", HARNESS, *(["--handled"] if handled else [])]
    harness = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    server = int(harness.stdout.readline())
    try:
        harness.send_signal(signal.SIGTERM)
        harness.wait(timeout=10)
        if handled:
            wait_until(lambda: not _alive(server), timeout=10, what="the server stopped with its harness")
        else:
            assert _alive(server), "an unhandled TERM should leave the server behind (what the helper prevents)"
    finally:
        harness.kill()
        if _alive(server):
            os.kill(server, signal.SIGKILL)
