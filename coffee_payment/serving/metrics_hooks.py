"""gunicorn hooks for monitoring: the metrics directory and listener, worker lifecycle metrics, the access log.

``gunicorn.conf.py`` calls :func:`prepare` before anything imports prometheus_client and names the hooks below.

Master: :func:`prepare` empties ``PROMETHEUS_MULTIPROC_DIR`` once per master (before preload and fork);
:func:`when_ready` starts the metrics listener thread on ``METRICS_PORT`` (0 = off; never the public port);
:func:`pre_fork`/:func:`child_exit` keep ``coffee_workers``; :func:`child_exit` counts restarts by reason and
compacts the dead worker's files. Worker: :func:`post_fork`/:func:`post_worker_init` time the boot and install the
request layer (``coffee_payment/monitoring/asgi.py``); :func:`worker_exit` records the drain and leaves an exit
note saying why the worker left (recycle or signal) for the master.

Restart reasons (``coffee_worker_restarts_total{reason}``), decided in the master when it reaps a worker:
reload (stopped by a HUP reload), timeout (the master's heartbeat check aborted it), recycle / signal (the
worker's exit note: max_requests reached / a TERM, INT or QUIT the master did not send), crash (no note: it
died without draining — SIGKILL from outside or OOM, a segfault, an exception). Workers the master stopped on
purpose (shutdown, TTOU) are not restarts.
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from coffee_payment.serving.env import parse_bind_host, parse_bool, parse_int, warn_stderr

DEFAULT_METRICS_PORT = 9464
ATTENTION_REFRESH_S = 30.0


class _State:
    """Module state: the master's (directory, listener, signals sent, reload set) and a worker's boot clock."""

    directory: Path | None = None
    created_dir = False
    prepared_pid: int | None = None
    listener: Any = None
    master_signals: dict[int, int] = {}  # pid → last signal the master sent it
    reloading: set[int] = set()
    forked_at: float = 0.0
    refresher: asyncio.Task[None] | None = None


def metrics_port(environ: dict[str, str] | os._Environ, public_ports: set[int]) -> int:
    """``METRICS_PORT`` (0–65535, default 9464; 0 = off). A public (bound) port → off, with a warning."""
    port = parse_int(environ, "METRICS_PORT", default=DEFAULT_METRICS_PORT, minimum=0, maximum=65535)
    if port in public_ports:
        warn_stderr(f"METRICS_PORT={port} is the public port; metrics listener off (never on the public port)")
        return 0
    return port


def metrics_host(environ: dict[str, str] | os._Environ) -> str:
    """``METRICS_BIND_HOST``, by default the address gunicorn binds: ``GUNICORN_BIND_HOST`` as resolved (a bad one
    was warned about at config load and replaced by 0.0.0.0; its raw value made the listener fail to bind)."""
    serving = parse_bind_host(environ, "GUNICORN_BIND_HOST", default="0.0.0.0", warn=lambda _message: None)
    return parse_bind_host(environ, "METRICS_BIND_HOST", default=serving)


def prepare(environ: os._Environ) -> None:
    """Set and empty the multiprocess directory, once per master process (``gunicorn.conf.py`` is re-read on HUP).

    Skipped after a USR2 re-exec (``GUNICORN_PID`` set): the old master's workers still write there.
    """
    from coffee_payment.monitoring.directory import ENV, prepare_dir

    if _State.prepared_pid == os.getpid():
        return
    _State.prepared_pid = os.getpid()
    if "GUNICORN_PID" in environ and environ.get(ENV):
        _State.directory = Path(environ[ENV])
        return
    _State.directory, _State.created_dir = prepare_dir(environ)
    if _State.created_dir:
        # Also when no server starts (``gunicorn --check-config`` reads this file too) or the master dies before
        # on_exit. Only in this process: forked workers inherit atexit handlers.
        atexit.register(_remove_if_owner, os.getpid(), _State.directory)


def _remove_if_owner(owner: int, directory: Path) -> None:
    from coffee_payment.monitoring.directory import remove_dir

    if os.getpid() == owner:
        remove_dir(directory)


def when_ready(server: Any) -> None:
    """Start the metrics listener (a daemon thread in the master) unless ``METRICS_PORT=0``."""
    from prometheus_client import start_http_server

    from coffee_payment.monitoring.multiproc import scrape_registry

    # The ports gunicorn actually bound (GUNICORN_CMD_ARGS may have changed GUNICORN_PORT's).
    port = metrics_port(os.environ, {address[1] for address in server.cfg.address if isinstance(address, tuple)})
    if port == 0 or _State.directory is None or _State.listener is not None:
        return
    host = metrics_host(os.environ)
    registry = scrape_registry(_State.directory, lambda: _live_workers(server))
    try:
        _State.listener, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        old_master = getattr(server, "master_pid", 0)
        if exc.errno == errno.EADDRINUSE and old_master:
            # A USR2 upgrade: the old master serves METRICS_PORT until it exits (gunicorn docs, "Upgrading to a
            # new binary on the fly"); without a retry this master had no metrics listener for the rest of its life.
            server.log.warning(
                "Metrics listener on %s:%s busy (%s): held by the old master %s after USR2; retrying until it exits",
                host,
                port,
                exc,
                old_master,
            )
            threading.Thread(
                target=_listen_when_free, args=(server, host, port, registry), name="metrics-listen", daemon=True
            ).start()
            return
        server.log.error("Metrics listener on %s:%s failed (%s): METRICS_PORT metrics are off", host, port, exc)
        return
    server.log.info("Metrics listener at http://%s:%s/metrics (dir %s)", host, port, _State.directory)


def _listen_when_free(server: Any, host: str, port: int, registry: Any, interval: float = 0.5) -> None:
    """Master, a daemon thread after a USR2 upgrade: bind the metrics listener once the old master released it."""
    from prometheus_client import start_http_server

    while True:
        time.sleep(interval)
        try:
            _State.listener, _ = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                continue
            server.log.error("Metrics listener on %s:%s failed (%s): METRICS_PORT metrics are off", host, port, exc)
            return
        server.log.info("Metrics listener at http://%s:%s/metrics (dir %s)", host, port, _State.directory)
        return


def _live_workers(server: Any) -> list[int]:
    # Called from the listener thread while the arbiter may add or remove workers.
    for _ in range(5):
        try:
            return list(server.WORKERS)
        except RuntimeError:  # dictionary changed size during iteration
            continue
    return []


def on_starting(server: Any) -> None:
    """Master start: log the access-log setting (gunicorn's ``accesslog`` stays None: the request layer writes
    it); remember which signals the master itself sends (see the restart reasons above)."""
    from coffee_payment.monitoring.logformat import log_format

    if parse_bool(os.environ, "GUNICORN_ACCESS_LOG", default=True, warn=lambda _: None):
        probes = "logged" if parse_bool(os.environ, "ACCESS_LOG_PROBES", default=False) else "not logged"
        server.log.info("Access log: stdout, LOG_FORMAT=%s, probes %s", log_format(os.environ), probes)
    else:
        server.log.info("Access log: off (GUNICORN_ACCESS_LOG=0)")
    original_kill_worker = server.kill_worker

    def kill_worker(pid: int, sig: int) -> None:
        _State.master_signals[pid] = sig
        original_kill_worker(pid, sig)

    server.kill_worker = kill_worker


def on_reload(server: Any) -> None:
    """HUP: the workers alive now will be replaced."""
    _State.reloading.update(server.WORKERS)


def pre_fork(server: Any, worker: Any) -> None:
    """Master, just before a fork: the worker about to start is counted."""
    from coffee_payment.monitoring import metrics

    metrics.set_workers(len(server.WORKERS) + 1)


def restart_reason(*, pid: int, aborted: bool, note: str | None) -> str | None:
    """Why worker ``pid`` left (see the module docstring), or None when the master stopped it on purpose."""
    if pid in _State.reloading:
        return "reload"
    if aborted:
        return "timeout"
    if pid in _State.master_signals:
        return None
    if note in ("recycle", "signal"):
        return note
    return "crash"


def child_exit(server: Any, worker: Any) -> None:
    """Master, after reaping a worker: worker count, restart reason, compaction of its metric files."""
    from coffee_payment.monitoring import metrics
    from coffee_payment.monitoring.multiproc import compact

    pid = worker.pid
    metrics.set_workers(len(server.WORKERS))
    note = _read_exit_note(pid)
    reason = restart_reason(pid=pid, aborted=bool(getattr(worker, "aborted", False)), note=note)
    _State.reloading.discard(pid)
    _State.master_signals.pop(pid, None)
    if reason is not None:
        metrics.record_restart(reason)
    if _State.directory is not None:
        compact(_State.directory, pid)


def _note_path(pid: int) -> Path | None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(directory) / f"exit_{pid}.note" if directory else None


def _read_exit_note(pid: int) -> str | None:
    path = _note_path(pid)
    if path is None:
        return None
    try:
        note = path.read_text().strip()
    except OSError:
        return None
    path.unlink(missing_ok=True)
    return note


def on_exit(server: Any) -> None:
    """Master exit: stop the listener; remove the directory if this master created it."""
    from coffee_payment.monitoring.directory import remove_dir

    if _State.listener is not None:
        _State.listener.shutdown()
        _State.listener = None
    if _State.created_dir and _State.directory is not None:
        remove_dir(_State.directory)


def post_fork(server: Any, worker: Any) -> None:
    """Worker, right after fork: start the boot clock; close the inherited metrics listener socket."""
    _State.forked_at = time.monotonic()
    if _State.listener is not None:
        _State.listener.socket.close()  # the child's copy only; the master keeps serving
        _State.listener = None


def post_worker_init(worker: Any) -> None:
    """Worker, app loaded: record the boot time; put the request layer in front of the app."""
    from coffee_payment.monitoring import metrics

    metrics.WORKER_BOOT.observe(time.monotonic() - _State.forked_at)
    # Our Uvicorn worker serves ``worker.wsgi``; gunicorn's native ``-k asgi`` worker (compared in the load
    # suite) serves ``worker.asgi`` and has no uvicorn config.
    attribute = "asgi" if hasattr(worker, "asgi") else "wsgi"
    setattr(
        worker, attribute, request_layer(getattr(worker, attribute), forwarded_allow_ips=worker.cfg.forwarded_allow_ips)
    )
    if hasattr(worker, "config"):
        # The request layer applies uvicorn's ProxyHeadersMiddleware itself, inside, so it sees the TCP peer.
        worker.config.proxy_headers = False


def request_layer(app: Any, *, forwarded_allow_ips: list[str] | str) -> Any:
    """``app`` behind uvicorn's proxy-headers middleware, then request ids, metrics and the access log."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware, _TrustedHosts

    from coffee_payment.monitoring.asgi import observe
    from coffee_payment.monitoring.logformat import access_logger, log_format

    trusted_hosts = _TrustedHosts(forwarded_allow_ips)
    access_on = parse_bool(os.environ, "GUNICORN_ACCESS_LOG", default=True, warn=lambda _: None)
    # A bad LOG_FORMAT was already warned about by the master (on_starting).
    access_log = access_logger(log_format(os.environ, warn=lambda _: None)) if access_on else None
    layered = observe(
        ProxyHeadersMiddleware(app, trusted_hosts=forwarded_allow_ips),
        trusted=lambda ip: ip is not None and ip in trusted_hosts,
        access_log=access_log,
        log_probes=parse_bool(os.environ, "ACCESS_LOG_PROBES", default=False, warn=lambda _: None),
    )
    return _on_first_request(layered, _start_attention_refresher)


def _on_first_request(app: Any, start: Any) -> Any:
    started = False

    async def application(scope: Any, receive: Any, send: Any) -> None:
        nonlocal started
        if not started:
            started = True
            start()
        await app(scope, receive, send)

    return application


def _start_attention_refresher() -> None:
    from coffee_payment.monitoring.attention import refresh_forever

    task = asyncio.get_running_loop().create_task(refresh_forever(ATTENTION_REFRESH_S))
    _State.refresher = task  # keep a reference: the loop holds tasks weakly


def worker_exit(server: Any, worker: Any) -> None:
    """Worker, leaving: record the drain time; leave an exit note (recycle / signal) for the master."""
    from coffee_payment.monitoring import metrics
    from coffee_payment.serving.probes import STATE

    started = getattr(STATE, "shutting_down_at", None)
    if started is not None:
        elapsed = time.monotonic() - started
        metrics.WORKER_DRAIN.observe(elapsed)
        deadline = getattr(getattr(worker, "config", None), "timeout_graceful_shutdown", None)
        if deadline is not None and elapsed >= deadline:
            metrics.WORKER_DRAIN_DEADLINE.inc()
    note = exit_note(getattr(worker, "server", None))
    path = _note_path(os.getpid())
    if note is not None and path is not None:
        path.write_text(note)


def exit_note(uvicorn_server: Any) -> str | None:
    """``recycle`` when the server stopped by itself at max_requests, ``signal`` when a signal stopped it."""
    if uvicorn_server is None or not getattr(uvicorn_server, "started", False):
        return None
    cause = getattr(uvicorn_server, "cause", None)
    if cause is None:
        return "recycle"
    return "signal" if any(sig.name in cause for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)) else None
