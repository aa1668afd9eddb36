"""gunicorn configuration: every knob from GUNICORN_* env variables, parsed by coffee_payment/serving/env.py.

Run: ``gunicorn -c gunicorn.conf.py coffee_payment.asgi:application``. Bad values fall back to defaults with
one warning each on stderr; the effective configuration is logged once at start (``hooks.on_starting``).
No business logic here.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from coffee_payment.serving import fork as _fork
from coffee_payment.serving import hooks as _hooks
from coffee_payment.serving import metrics_hooks as _metrics
from coffee_payment.serving import stagger as _stagger
from coffee_payment.serving.env import resolve as _resolve

_metrics.prepare(os.environ)  # PROMETHEUS_MULTIPROC_DIR set and emptied before prometheus_client is imported

_serving = _resolve(os.environ)

bind = [_serving.bind]
workers = _serving.workers
worker_class = "coffee_payment.serving.worker.ServingUvicornWorker"
timeout = _serving.timeout
graceful_timeout = _serving.graceful_timeout
keepalive = _serving.keepalive
max_requests = _serving.max_requests
max_requests_jitter = _serving.max_requests_jitter
forwarded_allow_ips = _serving.forwarded_allow_ips
loglevel = _serving.log_level
errorlog = "-"
# uvicorn's access line has no duration: the request layer (coffee_payment/monitoring/asgi.py) logs instead.
accesslog = None
# The heartbeat is an fchmod per second per worker: keep it off disk-backed /tmp (gunicorn docs, "Blocking OS calls").
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
# gunicorn 27 opens a per-user control socket by default; two servers side by side would fight over it.
control_socket_disable = _serving.control_socket is None
if _serving.control_socket is not None:
    control_socket = _serving.control_socket
# Import the app once in the master: a worker (re)start is a fork, not a Django boot (serving/fork.py).
preload_app = _serving.preload


def on_starting(server):
    """Master start: INT as graceful as TERM, truthful stop logs, the effective config logged once."""
    _hooks.install_signal_semantics(server)
    _hooks.log_effective_config(server, _serving.as_dict())
    _metrics.on_starting(server)


def pre_fork(server, worker):
    """Master, before each fork: count the worker; with preload, warm the URL resolver once, close DB
    connections/pools and gc.freeze() (serving/fork.py)."""
    _metrics.pre_fork(server, worker)
    _fork.before_fork(server, worker)


def post_fork(server, worker):
    """Worker, right after fork: fresh random state; the boot clock; the inherited metrics socket closed."""
    _fork.after_fork(server, worker)
    _metrics.post_fork(server, worker)


def on_exit(server):
    """Master exit: stop the metrics listener; remove the shared metrics and recycle-stagger directories."""
    _metrics.on_exit(server)
    _stagger.remove_shared_directory(server.pid, server.cfg.worker_tmp_dir)


when_ready, on_reload, child_exit = _metrics.when_ready, _metrics.on_reload, _metrics.child_exit
post_worker_init, worker_exit = _metrics.post_worker_init, _metrics.worker_exit
