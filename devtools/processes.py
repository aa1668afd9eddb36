"""Process helpers for tests and drills that run real gunicorn masters on loopback.

The master is started, awaited and stopped through ``devtools.launch`` (the one launcher; ``Popen.pid`` is the
master's pid), its combined log captured in a file, and worker pids listed from
``/proc/<master>/task/<master>/children``. Reusable by the lead's tests and the drill::

    with running_gunicorn(workers=2) as server:
        httpx.get(server.url("/health"))
        server.send_signal(signal.SIGTERM)
        assert server.wait_exit(timeout=10) == 0
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from devtools.launch import free_port, gunicorn_command, start_process, stop_process, wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[1]
APP = "coffee_payment.asgi:application"
_ISOLATED_PREFIXES = ("GUNICORN_", "SERVING_", "METRICS_")
_ISOLATED_NAMES = ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "PROMETHEUS_MULTIPROC_DIR")
# free_port and wait_until live in devtools.launch; this module re-exports them for its callers.
__all__ = [
    "APP",
    "GunicornServer",
    "child_pids",
    "connection_refused",
    "free_port",
    "requests_picked_up",
    "running_gunicorn",
    "serving_env",
    "wait_until",
]


def connection_refused(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """True if a new TCP connection to ``host:port`` is refused (nothing listens)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True


_TCP_LISTEN, _TCP_ESTABLISHED = "0A", "01"


def tcp_table() -> list[tuple[int, int, str, int]]:
    """Every local TCP socket from /proc/net/tcp{,6}: (local port, remote port, state, receive-queue bytes).

    ``state`` is the kernel's hex code (``0A`` listen, ``01`` established, ``06`` time-wait, …). For a listening
    socket the receive-queue field is the accept queue length (connections the kernel has completed and no
    worker has accepted yet); for an established one, bytes not yet read by the process. Linux only.
    """
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
            rows.append(
                (
                    int(local.rsplit(":", 1)[1], 16),
                    int(remote.rsplit(":", 1)[1], 16),
                    state,
                    int(queues.split(":")[1], 16),
                )
            )
    return rows


def _tcp_sockets(port: int) -> list[tuple[str, int]]:
    """(state, receive-queue bytes) of every local TCP socket bound to ``port`` (see :func:`tcp_table`)."""
    return [(state, queued) for local, _remote, state, queued in tcp_table() if local == port]


def requests_picked_up(port: int, count: int) -> bool:
    """True when the server on ``port`` has accepted at least ``count`` connections and read what they sent.

    Tests and drills use it after sending long requests, before a signal, instead of sleeping and hoping: the
    accept queue is empty and no accepted connection has unread bytes (a request still in the kernel's
    buffers is not yet "in flight" at the worker). Linux only (/proc/net/tcp).
    """
    sockets = _tcp_sockets(port)
    listening = [queued for state, queued in sockets if state == _TCP_LISTEN]
    established = [unread for state, unread in sockets if state == _TCP_ESTABLISHED]
    return bool(listening) and not any(listening) and len(established) >= count and not any(established)


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn workers of a master), from /proc; [] once it has exited."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return sorted(int(p) for p in children.read_text().split())
    except (FileNotFoundError, ProcessLookupError):
        return []
    except OSError:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
        return sorted(found)


def serving_env(port: int, overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """Environment for a test server: the caller's, minus any GUNICORN_*/SERVING_*/WEB_CONCURRENCY, plus a
    loopback bind on ``port``, the test endpoints, a throwaway SECRET_KEY and FIELD_ENCRYPTION_KEYS;
    ``overrides`` last (None unsets).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_ISOLATED_PREFIXES) and key not in _ISOLATED_NAMES
    }
    env.update(
        {
            "GUNICORN_BIND_HOST": "127.0.0.1",
            "GUNICORN_PORT": str(port),
            "SERVING_TEST_ENDPOINTS": "1",
            "PYTHONUNBUFFERED": "1",
            "METRICS_PORT": "0",  # servers side by side: a test that scrapes passes a free port
        }
    )
    env.setdefault("SECRET_KEY", "test-only-secret-key-for-serving-tests")
    env.setdefault("FIELD_ENCRYPTION_KEYS", "dGVzdC1vbmx5LWZpZWxkLWtleS1zZXJ2aW5nLXRlc3Q=")  # Fernet, tests only
    env["DJANGO_SETTINGS_MODULE"] = "coffee_payment.settings"  # not the test process's tests.settings
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class GunicornServer:
    """One gunicorn master started with ``gunicorn -c gunicorn.conf.py coffee_payment.asgi:application``."""

    def __init__(
        self,
        *,
        env: Mapping[str, str | None] | None = None,
        args: tuple[str, ...] = (),
        port: int | None = None,
        app: str = APP,
    ) -> None:
        self.port = port or free_port()
        self.env = serving_env(self.port, env)
        self.args = args
        self.app = app
        self.log_path = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The master's pid."""
        assert self.process is not None, "not started"
        return self.process.pid

    def url(self, path: str = "/") -> str:
        """``http://127.0.0.1:<port><path>``."""
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> GunicornServer:
        """Start the master in its own session (a test's Ctrl-C does not reach it; cleanup kills the group)."""
        command = [*gunicorn_command(), "-c", "gunicorn.conf.py", *self.args, self.app]
        with self.log_path.open("ab") as log:
            self.process = start_process(command, env=self.env, output=log, cwd=PROJECT_ROOT)
        return self

    def logs(self) -> str:
        """Everything the master and workers wrote to stdout/stderr so far."""
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """Current worker pids (children of the master)."""
        return child_pids(self.pid)

    def running(self) -> bool:
        """True while the master has not exited."""
        return self.process is not None and self.process.poll() is None

    def _healthy(self) -> bool:
        if not self.running():
            raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.logs()}")  # type: ignore[union-attr]
        try:
            return httpx.get(self.url("/health"), timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def serving_workers(self) -> list[int]:
        """Worker pids that have finished booting: uvicorn logged ``Started server process [pid]`` for them.

        Until then a worker has default signal dispositions (UvicornWorker resets them; uvicorn installs its
        own when it starts serving), so a TERM during boot kills it without the shutdown stage logs.
        """
        logs = self.logs()
        return [pid for pid in self.worker_pids() if f"Started server process [{pid}]" in logs]

    def wait_ready(self, *, timeout: float = 30.0, workers: int | None = None) -> GunicornServer:
        """Wait until /health answers 200 and, if given, ``workers`` workers have booted; TimeoutError with logs."""
        try:
            wait_until(self._healthy, timeout=timeout, what="/health 200")
            if workers is not None:
                wait_until(
                    lambda: len(self.worker_pids()) == workers and len(self.serving_workers()) == workers,
                    timeout=timeout,
                    what=f"{workers} workers serving",
                )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- log ---\n{self.logs()}") from None
        return self

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the master only."""
        os.kill(self.pid, sig)

    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the master to exit; its return code, or None if still running."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the master, wait ``timeout`` seconds, then SIGKILL its whole process group; return code."""
        if self.process is None:
            return 0
        return stop_process(self.process, sig=sig, timeout=timeout)


@contextlib.contextmanager
def running_gunicorn(
    *,
    env: Mapping[str, str | None] | None = None,
    args: tuple[str, ...] = (),
    workers: int | None = None,
    ready_timeout: float = 30.0,
) -> Iterator[GunicornServer]:
    """Start gunicorn, wait for readiness (and ``workers`` workers), always stop it on exit (TERM → KILL).

    ``workers`` also sets GUNICORN_WORKERS unless ``env`` names it.
    """
    env = dict(env or {})
    if workers is not None:
        env.setdefault("GUNICORN_WORKERS", str(workers))
    server = GunicornServer(env=env, args=args).start()
    try:
        server.wait_ready(timeout=ready_timeout, workers=workers)
        yield server
    finally:
        server.stop()
