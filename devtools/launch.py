"""The one way devtools, tests, the drill and the load runner start, wait for and stop a server process.

* :func:`start_process` — the real program (no shell wrapper: ``Popen.pid`` is the server's), in its own session
  so a terminal's Ctrl-C reaches only the caller and cleanup can kill the whole process group;
* :func:`wait_until` — poll a condition with a deadline (every wait in devtools and the tests goes through it);
* :func:`wait_http_ok` — readiness: a URL answers 200, failing fast when the process exits;
* :func:`stop_process` — a signal, a bounded wait, then SIGKILL of the process group (workers left behind too);
* :func:`interrupt_on_stop_signals` — TERM and INT as Ctrl-C, so a harness's cleanup runs when it is stopped;
* :func:`gunicorn_command` — how to start gunicorn so that its USR2 binary upgrade works.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


def gunicorn_command() -> list[str]:
    """The argv prefix that starts gunicorn: the ``gunicorn`` script beside this interpreter (the virtualenv's), or
    ``python -m gunicorn`` when there is none.

    The script, because USR2 (binary upgrade) re-executes the master's own command line: started as
    ``python -m gunicorn`` that becomes ``python .../gunicorn/__main__.py``, whose directory then shadows the
    standard library's ``http`` with gunicorn's own ``http`` package, and the new master dies at import
    (``module 'http' has no attribute 'HTTPStatus'``) while the old one keeps serving. Production starts the script
    (``entrypoint.sh``); so do the toolkit's servers."""
    script = Path(sys.executable).with_name("gunicorn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gunicorn"]


def interrupt_on_stop_signals() -> None:
    """Make SIGTERM, and SIGINT even when inherited ignored (a script's background job), raise KeyboardInterrupt
    in the main thread, so the ``with``/``finally`` blocks of a harness stop the servers it started. Without it
    a TERM (``timeout``, a CI runner, ``kill``) ends the harness at once and leaves its servers running."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it; a small reuse race remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "") -> T:
    """Poll ``predicate`` until it returns a truthy value, which is returned; TimeoutError after ``timeout``
    seconds (the predicate is always tried at least once). An exception from the predicate propagates at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not true within {timeout}s: {what or predicate}")
        time.sleep(interval)


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (a process started with ``start_new_session=True``): the
    gunicorn workers of a master that is gone or hung, the children of a runserver or a sandbox. No-op if gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def start_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    output: IO | None = None,
    cwd: Path = ROOT,
) -> subprocess.Popen:
    """Start ``argv`` in its own session with stdin closed; stdout and stderr go to ``output`` (None: inherit)."""
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_process(proc: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    """Send ``sig``, wait up to ``timeout`` seconds, then SIGKILL the process group (``proc`` was started in its
    own session: workers or children left behind go too). Returns the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.wait(timeout=10)
    kill_group(proc.pid)  # children orphaned by a parent that exited on its own
    return proc.returncode


def wait_http_ok(url: str, *, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200. Raises RuntimeError after ``timeout`` seconds (with the last answer)
    or as soon as ``proc`` exits."""
    last = ["no answer"]

    def answered_200() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before {url} was ready")
        try:
            status = httpx.get(url, timeout=2).status_code
        except httpx.HTTPError as exc:
            last[0] = type(exc).__name__
            return False
        last[0] = f"HTTP {status}"
        return status == 200

    try:
        wait_until(answered_200, timeout=timeout, interval=0.1, what=f"{url} 200")
    except TimeoutError:
        raise RuntimeError(f"{url} not ready after {timeout:g} s ({last[0]})") from None
