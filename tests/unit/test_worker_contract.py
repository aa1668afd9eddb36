"""ServingUvicornWorker keeps its parent's contract beyond what its docstring lists (issue 15 item 7):
``--timeout 0`` means "no worker timeout", not "drain for 0 s"; a subclass's ``CONFIG_KWARGS["http"]`` (upstream's
``UvicornH11Worker`` pattern) is kept."""

from __future__ import annotations

from gunicorn.config import Config
from gunicorn.glogging import Logger

from coffee_payment.serving.worker import ServingUvicornWorker, drain_timeout


def _worker(cls: type, **settings: object) -> ServingUvicornWorker:
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return cls(age=1, ppid=1, sockets=[], app=None, timeout=cfg.timeout, cfg=cfg, log=Logger(cfg))


def test_timeout_zero_means_no_worker_timeout_not_a_zero_drain():
    assert drain_timeout(0, 30) == drain_timeout(30, 30) == 27.0
    assert _worker(ServingUvicornWorker, timeout=0, graceful_timeout=20).config.timeout_graceful_shutdown == 18.0


def test_a_subclass_choosing_h11_keeps_it():
    class H11Worker(ServingUvicornWorker):
        CONFIG_KWARGS = {**ServingUvicornWorker.CONFIG_KWARGS, "http": "h11"}

    assert _worker(H11Worker).config.http == "h11"
    assert _worker(ServingUvicornWorker).config.http.__name__ == "DrainingHttpToolsProtocol"


def _arbiter_with_queue(*signals: int):
    """A bare Arbiter (no setup) whose SIG_QUEUE holds ``signals``, as a freshly forked worker inherits it."""
    import queue

    from gunicorn.arbiter import Arbiter

    arbiter = Arbiter.__new__(Arbiter)
    arbiter.SIG_QUEUE = queue.SimpleQueue()
    for sig in signals:
        arbiter.SIG_QUEUE.put_nowait(sig)
    return arbiter


def test_a_stop_signal_caught_by_the_inherited_arbiter_handler_is_found():
    import signal

    from coffee_payment.serving.worker import stop_signal_queued

    arbiter = _arbiter_with_queue(signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT)
    assert stop_signal_queued(arbiter.signal) == signal.SIGTERM
    assert arbiter.SIG_QUEUE.empty()  # the child's copy is drained
    assert stop_signal_queued(_arbiter_with_queue(signal.SIGINT).signal) == signal.SIGINT


def test_no_stop_signal_or_no_arbiter_handler_means_boot_on():
    import signal

    from coffee_payment.serving.worker import stop_signal_queued

    assert stop_signal_queued(_arbiter_with_queue(signal.SIGCHLD, signal.SIGTTIN, signal.SIGHUP).signal) is None
    assert stop_signal_queued(_arbiter_with_queue().signal) is None
    for handler in (signal.SIG_DFL, signal.SIG_IGN, None, print, lambda sig, frame: None):
        assert stop_signal_queued(handler) is None
