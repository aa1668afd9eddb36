"""gunicorn server hooks (run in the master): signal semantics, truthful shutdown logs, the start-up config line.

Signal semantics for the master (gunicorn/arbiter.py, gunicorn 27):

* TERM — graceful: close the listeners at once, TERM to workers (each drains, see ``worker.py``), SIGKILL
  survivors at ``graceful_timeout``, exit 0.
* INT — made identical to TERM here. Stock gunicorn runs ``stop(graceful=False)`` on INT, which sends QUIT to
  the workers (docs/serving.md §2: with UvicornWorker they then served new connections until SIGKILL).
* A second INT, or a QUIT, during a graceful stop — quick: the arbiter sends QUIT to workers (which exit at
  once, dropping in-flight requests) and SIGKILLs survivors after 2 s.
* QUIT — quick from the start (``stop(graceful=False)``): QUIT to workers.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from typing import Any

from coffee_payment.serving.stagger import stopping_marker

_PATCHED = "_coffee_serving_hooks_installed"
_OOM_HINT = " Perhaps out of memory?"


class DeadlineKillFilter(logging.Filter):
    """Rewrite gunicorn's "was sent SIGKILL! Perhaps out of memory?" for workers the master killed itself.

    gunicorn's ``reap_workers`` blames every SIGKILL on the OOM killer, including its own kill at the
    graceful/heartbeat deadline; the pids killed by the master are recorded in ``killed``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.killed: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record; reword it when the master sent the SIGKILL."""
        if isinstance(record.msg, str) and record.msg.endswith(_OOM_HINT) and record.args:
            pid = record.args[0] if isinstance(record.args, tuple) else None
            if pid in self.killed:
                self.killed.discard(pid)
                record.msg = record.msg[: -len(_OOM_HINT)] + " (by the master at its deadline, not OOM)"
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install_signal_semantics(server: Any) -> None:
    """Patch one ``Arbiter`` instance: INT graceful like TERM, logged stop stages, truthful SIGKILL logs.

    The arbiter dispatches signals with ``getattr(self, "handle_" + name)`` and calls ``self.stop`` and
    ``self.kill_worker``, so instance attributes take effect without subclassing (the ``gunicorn`` command
    builds its own Arbiter).
    """
    if getattr(server, _PATCHED, False):
        return
    setattr(server, _PATCHED, True)
    log = server.log
    deadline_filter = DeadlineKillFilter()
    log.error_log.addFilter(deadline_filter)

    server.handle_int = server.handle_term

    original_kill_worker = server.kill_worker

    def kill_worker(pid: int, sig: int) -> None:
        if sig == signal.SIGKILL and pid in server.WORKERS:
            deadline_filter.killed.add(pid)
            log.warning("Worker %s still running at the deadline: SIGKILL (its in-flight requests are lost)", pid)
        original_kill_worker(pid, sig)

    server.kill_worker = kill_worker

    original_stop = server.stop
    marker = stopping_marker(server.pid, server.cfg.worker_tmp_dir)
    marker.unlink(missing_ok=True)  # a stale one (a killed master whose pid came back) would stop every boot

    def stop(graceful: bool = True) -> None:
        _mark(marker)  # before any signal: see worker.ServingUvicornWorker.init_signals
        workers = list(server.WORKERS)
        if not workers:
            original_stop(graceful)
            return
        mode = "graceful: TERM, workers drain in-flight requests" if graceful else "quick: QUIT to workers"
        log.info(
            "Master shutdown 1/2: closing listeners (new connections refused); %s; %d worker(s) %s; deadline %ss",
            mode,
            len(workers),
            workers,
            server.cfg.graceful_timeout,
        )
        started = time.monotonic()
        original_stop(graceful)
        killed = [pid for pid in workers if pid in deadline_filter.killed]
        log.info(
            "Master shutdown 2/2: all workers gone after %.2fs (%d killed at the deadline)",
            time.monotonic() - started,
            len(killed),
        )

    server.stop = stop


def _mark(marker: Any) -> None:
    """Create the stopping marker (a failure only loses the guard for a worker forked at this instant)."""
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass


def log_effective_config(server: Any, resolved: dict[str, object]) -> None:
    """Log the effective configuration once (one JSON line, no secrets); warn where it differs from the env.

    A difference means ``GUNICORN_CMD_ARGS`` or a command-line flag overrode the GUNICORN_* variable. Zero
    workers (accepted by gunicorn's own validator) is replaced by 1.
    """
    cfg = server.cfg
    effective = {
        "workers": cfg.workers,
        "bind": ",".join(cfg.bind),
        "timeout": cfg.timeout,
        "graceful_timeout": cfg.graceful_timeout,
        "keepalive": cfg.keepalive,
        "max_requests": cfg.max_requests,
        "max_requests_jitter": cfg.max_requests_jitter,
        "forwarded_allow_ips": ",".join(cfg.forwarded_allow_ips),
        "worker_class": cfg.worker_class_str,
        "worker_tmp_dir": cfg.worker_tmp_dir,
        "control_socket": None if cfg.control_socket_disable else cfg.control_socket,
        "loglevel": cfg.loglevel,
        "accesslog": cfg.accesslog,
        "preload_app": cfg.preload_app,
    }
    for key in (
        "workers",
        "bind",
        "timeout",
        "graceful_timeout",
        "keepalive",
        "max_requests",
        "max_requests_jitter",
        "forwarded_allow_ips",
    ):
        if key in resolved and str(resolved[key]) != str(effective[key]):
            server.log.warning(
                "%s=%s overridden by GUNICORN_CMD_ARGS or the command line (env resolved %s)",
                key,
                effective[key],
                resolved[key],
            )
    if server.num_workers < 1:
        server.log.warning("workers=%s would never serve; using 1", server.num_workers)
        server.num_workers = 1
        effective["workers"] = 1
    server.log.info("Serving configuration: %s", json.dumps(effective, sort_keys=True))
