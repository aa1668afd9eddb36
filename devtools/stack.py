"""Start the whole local stack — sandbox emulators + the app under runserver or gunicorn — as real processes.

Used by ``invoke serve``, the integration tests, the drill and the load runner, so every one of them starts the
server the same way: real processes (the server is exec'd, its pid is the server's), readiness polled with a
deadline, stopped with a signal and escalation, logs captured — all through ``devtools.launch``.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from cryptography.fernet import Fernet

from devtools.checkout_cache import checkout_digest, exclusive_lock
from devtools.dbtemplate import prepare_database
from devtools.launch import free_port, gunicorn_command, start_process, stop_process, wait_http_ok

__all__ = ["MODES", "PYTHON", "ROOT", "Stack", "StackConfig", "run_manage", "stop_process", "wait_http_ok"]
ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# Server kinds: Django's runserver; gunicorn + our UvicornWorker subclass (production);
# gunicorn's native ASGI worker (load comparison only).
MODES = ("dev", "prod", "gunicorn-asgi")
# For harnesses that are one client address driving many machines' orders (integration suite, load suite, drill):
# the per-address rate limits and the open-payments bound per device (issue 11) are off; they have their own tests
# (tests/integration/test_webhook_surface.py).
ONE_CLIENT_ENV = {
    "RATE_LIMIT_WEBHOOK_PER_MINUTE": "0",
    "RATE_LIMIT_INITIATE_PER_MINUTE": "0",
    "DEVICE_OPEN_PAYMENTS_MAX": "1000000",
}


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (a bind would succeed)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def run_manage(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    """Run ``manage.py`` with ``args``; returns stdout. Raises CalledProcessError with its output on failure."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
    return done.stdout


STATIC_ROOT = ROOT / "staticfiles"  # settings.STATIC_ROOT


def static_fingerprint() -> str:
    """What ``collectstatic`` output depends on: this interpreter's environment (``sys.prefix``: its packages ship
    the admin's assets), uv.lock, settings.py (the storage backend) and every file under a ``static/`` directory of the
    project (path, size, mtime). A hex digest."""
    digest = checkout_digest()
    for static_dir in sorted((ROOT / "coffee_payment").rglob("static")):
        for path in sorted(static_dir.rglob("*")):
            stat = path.stat()
            digest.update(f"{path.relative_to(ROOT)} {stat.st_size} {stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def collectstatic_once(env: dict[str, str], timeout: float = 300) -> bool:
    """Run ``manage.py collectstatic`` (into ``staticfiles/``) unless the last run had the same
    :func:`static_fingerprint`; returns True when it ran. The compressed storage re-compresses every file on each
    run (~4 s of CPU), and every stack, drill and test server starts from the same checkout. A file lock keeps
    concurrent starts (xdist workers, side-by-side drills) from writing the directory at the same time.
    Raises CalledProcessError as :func:`run_manage`."""
    STATIC_ROOT.mkdir(exist_ok=True)
    stamp = STATIC_ROOT / ".collected"
    fingerprint = f"{static_fingerprint()} DEBUG={env.get('DEBUG', '')}"  # DEBUG picks the storage backend
    with exclusive_lock(STATIC_ROOT / ".lock"):
        if stamp.exists() and stamp.read_text() == fingerprint:
            return False
        stamp.unlink(missing_ok=True)
        run_manage("collectstatic", "--noinput", "-v", "0", env=env, timeout=timeout)
        stamp.write_text(fingerprint)
        return True


def _local_key(path: Path, generate) -> tuple[str, bool]:
    """A key kept in ``path`` (mode 0600), made by ``generate()`` on first use; returns (key, newly_generated)."""
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate()
    path.write_text(key)
    path.chmod(0o600)
    return key, True


def local_secret_key(var_dir: Path) -> tuple[str, bool]:
    """The SECRET_KEY for local prod mode, kept in ``var_dir/secret_key``; returns (key, newly_generated)."""
    return _local_key(var_dir / "secret_key", lambda: secrets.token_urlsafe(50))


def local_field_key(var_dir: Path) -> tuple[str, bool]:
    """The FIELD_ENCRYPTION_KEYS for local runs (dev and prod mode alike, so both read the same var/ database),
    kept in ``var_dir/field_encryption_key``; returns (key, newly_generated)."""
    return _local_key(var_dir / "field_encryption_key", lambda: Fernet.generate_key().decode())


@dataclass
class StackConfig:
    """What to start. Ports of 0 are picked free. ``env`` overrides the app's environment (e.g. DATABASE_URL,
    GUNICORN_WORKERS); ``sandbox`` is the initial sandbox config (JSON shape of ``POST /_sandbox/config``)."""

    mode: str = "prod"
    host: str = "127.0.0.1"
    port: int = 0
    sandbox_port: int = 0
    var_dir: Path = field(default_factory=lambda: Path(os.environ.get("VAR_DIR") or ROOT / "var"))
    env: dict[str, str] = field(default_factory=dict)
    auto_pay: bool = False
    latency_ms: int = 0
    seed: bool = True
    log_to: Path | None = None  # None: inherit the terminal; else a directory for server.log / sandbox.log
    taskset: str | None = None  # e.g. "0": pin the server (and sandbox) to these CPUs
    server: bool = True  # False: database and sandbox only (the rollout drill starts its own pods at ``port``)


class Stack:
    """A running sandbox + app server. Use as a context manager; ``qr_links`` holds the demo links."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.port = config.port or free_port(config.host)
        self.sandbox_port = config.sandbox_port or free_port(config.host)
        self.base_url = f"http://{config.host}:{self.port}"
        self.sandbox_url = f"http://{config.host}:{self.sandbox_port}"
        self.server: subprocess.Popen | None = None
        self.sandbox: subprocess.Popen | None = None
        self.qr_links: list[str] = []
        self.database = ""  # how start() prepared the database: "cloned", "current" or "migrated"
        self.secret_generated = False
        self.field_key_generated = False
        self.warnings: list[str] = []  # about the caller's environment; `invoke serve` prints them
        self._files: list[IO] = []
        self.env = self._app_env()

    def _app_env(self) -> dict[str, str]:
        cfg = self.config
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "WEB_CONCURRENCY"))}
        if "WEB_CONCURRENCY" in os.environ:
            # gunicorn parses it before gunicorn.conf.py runs and crashes on a non-integer (issue 11).
            self.warnings.append(
                f"WARNING: WEB_CONCURRENCY={os.environ['WEB_CONCURRENCY']!r} is not passed to the server: gunicorn "
                "would parse it before gunicorn.conf.py (and crash on a non-integer); use GUNICORN_WORKERS"
            )
        env.setdefault("METRICS_PORT", "0")  # metrics listener off unless asked for: stacks run side by side
        env.update(
            DJANGO_SETTINGS_MODULE="coffee_payment.settings",
            VAR_DIR=str(cfg.var_dir),
            BASE_URL=self.base_url,
            SANDBOX_URL=self.sandbox_url,
            ALLOWED_HOSTS=f"localhost,127.0.0.1,[::1],{cfg.host}",
            GUNICORN_PORT=str(self.port),
            GUNICORN_BIND_HOST=cfg.host,
            PYTHONUNBUFFERED="1",
        )
        if not os.environ.get("FIELD_ENCRYPTION_KEYS"):
            env["FIELD_ENCRYPTION_KEYS"], self.field_key_generated = local_field_key(cfg.var_dir)
        if cfg.mode == "dev":
            env["DEBUG"] = "1"
        else:
            env["DEBUG"] = "0"
            if not os.environ.get("SECRET_KEY"):
                env["SECRET_KEY"], self.secret_generated = local_secret_key(cfg.var_dir)
        env.update(cfg.env)
        return env

    def _output(self, name: str) -> IO | None:
        if self.config.log_to is None:
            return None
        self.config.log_to.mkdir(parents=True, exist_ok=True)
        handle = open(self.config.log_to / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._files.append(handle)
        return handle

    def _pinned(self, argv: list[str]) -> list[str]:
        return ["taskset", "-c", self.config.taskset, *argv] if self.config.taskset else argv

    def server_argv(self) -> list[str]:
        """The server command line (exec'd directly: the child's pid is the server's)."""
        mode = self.config.mode
        if mode == "dev":
            return [PYTHON, "manage.py", "runserver", f"{self.config.host}:{self.port}", "--noreload"]
        argv = [*gunicorn_command(), "-c", "gunicorn.conf.py", "coffee_payment.asgi:application"]
        if mode == "gunicorn-asgi":
            argv += ["--worker-class", "asgi"]
        elif mode != "prod":
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        return argv

    def start(self) -> Stack:
        """Migrate (a fresh database is cloned from a migrated template: ``devtools.dbtemplate``), seed the demo
        data, start the sandbox and the server, wait until both answer. ``self.database`` says how the database was
        prepared ("cloned", "current", "migrated"). Raises RuntimeError when a port is taken or a process does not
        come up, CalledProcessError when migrate or seeding fails."""
        for name, port in (("app", self.port), ("sandbox", self.sandbox_port)):
            if not port_free(self.config.host, port):
                raise RuntimeError(f"{name} port {self.config.host}:{port} is already in use (another server running?)")
        self.database = prepare_database(self.env)
        if self.config.mode != "dev":
            collectstatic_once(self.env)
        if self.config.seed:
            self.qr_links = run_manage("seed_demo", env=self.env).split()
        sandbox_argv = [
            PYTHON,
            "-m",
            "coffee_payment.sandbox",
            "--host",
            self.config.host,
            "--port",
            str(self.sandbox_port),
            "--webhook-base",
            self.base_url,
            "--latency-ms",
            str(self.config.latency_ms),
            "--auto-pay" if self.config.auto_pay else "--no-auto-pay",
        ]
        # Own sessions: a terminal's Ctrl-C reaches only the caller, which forwards exactly one signal (a second
        # INT makes gunicorn quit without draining).
        try:  # from the first child on, an interruption (Ctrl-C included) stops what was started
            self.sandbox = start_process(self._pinned(sandbox_argv), env=self.env, output=self._output("sandbox"))
            if self.config.server:
                self.server = start_process(
                    self._pinned(self.server_argv()), env=self.env, output=self._output("server")
                )
            wait_http_ok(f"{self.sandbox_url}/health", timeout=30, proc=self.sandbox)
            if self.server is not None:
                wait_http_ok(f"{self.base_url}/health", timeout=60, proc=self.server)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int | None:
        """Stop the server (``sig``, then SIGKILL after ``timeout`` s) and the sandbox; returns the server's code."""
        code = None
        if self.server is not None:
            code = stop_process(self.server, sig=sig, timeout=timeout)
        if self.sandbox is not None:
            stop_process(self.sandbox, timeout=10)
        for handle in self._files:
            handle.close()
        self._files.clear()
        return code

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
