"""The gunicorn worker class: ``uvicorn_worker.UvicornWorker`` with bounded, truthful, race-free draining.

What it changes, and why (sources: uvicorn_worker/_workers.py, uvicorn/server.py, gunicorn/arbiter.py,
``docs/serving.md``):

* ``lifespan="off"``: Django has no ASGI lifespan; ``auto`` logs a ValueError traceback at every boot. So an
  app's lifespan startup/shutdown never runs (no "Application startup complete.", a failing lifespan startup does
  not fail the boot): upstream's own tests of that assert this difference instead in
  ``tests/integration/upstream_uvicorn_worker`` (the rest of upstream's suite passes against this class).
* Drain bounded: uvicorn's ``timeout_graceful_shutdown`` defaults to None (unbounded), and the worker stops
  heartbeating while it drains, so a recycling worker with a slow request ends in WORKER TIMEOUT. Here the
  drain is bounded by :func:`drain_timeout` (below both ``timeout`` and ``graceful_timeout``) and a heartbeat
  task keeps notifying the arbiter while the event loop is alive — including during the drain.
* SIGQUIT = quick exit: UvicornWorker's QUIT handler only sets ``Worker.alive``, which nothing reads, so
  workers kept serving until SIGKILL. Here QUIT stops accepting, closes every connection (dropping in-flight
  requests) and exits at once. The master sends QUIT on its own QUIT and on a second INT during a graceful
  stop (arbiter ``stop``); a first INT to the master is made as graceful as TERM in ``hooks.on_starting``.
* Idle keep-alive connections are not closed the instant the drain starts: uvicorn's ``shutdown()`` closes
  them immediately, so a request the client already sent on one is reset (lost). Here an idle connection gets
  :data:`IDLE_GRACE` seconds; a request arriving in that window is served with ``Connection: close``.
* A TERM/INT/QUIT that lands while the worker still boots (before uvicorn installs its handlers) exits 0 with
  a log line instead of killing the worker by the signal's default action. One that lands between the fork and
  ``init_signals`` is caught by the arbiter's inherited handler, which only queues it in the child's copy of the
  arbiter: the worker finds it there (:func:`stop_signal_queued`) instead of booting and serving until the
  master's SIGKILL at the graceful deadline (seen: TERM right after a worker was forked took 30 s). Earlier
  still, CPython itself drops a signal pending at the fork; the master's stopping marker
  (``stagger.stopping_marker``, created before it signals) covers that window.
* A signal meant for the master (HUP, USR2, TTIN, TTOU, WINCH) is ignored by a worker, with a warning: gunicorn
  resets HUP and USR2 to their default action, terminate, so ``pkill -HUP -f gunicorn`` or a ``kill`` on a
  worker's pid killed the worker and dropped every request on it (gunicorn PR 1868).
* A worker whose master is gone (parent changed: SIGKILL, OOM) drains and exits, as gunicorn's own workers do;
  UvicornWorker never checks, so orphans served on unsupervised and kept the port from a new master.
* Stages are logged (1/3 stop accepting, 2/3 draining, 3/3 drained or deadline hit), and the worker exits 0
  instead of re-raising the signal (uvicorn's ``capture_signals`` re-raise kills it by SIGTERM).
* Recycles are staggered (``stagger.py``): a worker at ``max_requests`` starts draining only while the others
  accept. Its boot CPU time is logged once it accepts (with preload: a fork, not a Django boot).
* The heartbeat outlives the event loop (``heartbeat.py``): a sync view's executor thread blocked
  in the database keeps the process alive after ``serve()`` returns; the database-side statement/lock timeout
  ends it, and the heartbeat goes on until the process really exits (bounded), so no WORKER TIMEOUT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any, ClassVar

from gunicorn.arbiter import Arbiter
from uvicorn.config import Config
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from coffee_payment.serving import background, probes
from coffee_payment.serving.heartbeat import heartbeat_until_exit
from coffee_payment.serving.stagger import RecycleGate, shared_directory, stopping_marker

IDLE_GRACE = 1.0

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn[standard] ships httptools
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
# Signals that mean something to the master only (reload, re-exec, worker count, daemon stop). gunicorn's
# ``Worker.init_signals`` resets HUP and USR2 to SIG_DFL, whose action is to terminate the process, so a stray one
# (``pkill -HUP -f gunicorn``, a ``kill`` on the wrong pid: gunicorn PR 1868) killed the worker and every request
# on it. A worker ignores them (a Python handler, not SIG_IGN, so a subprocess it starts gets the defaults).
MASTER_ONLY_SIGNALS = (signal.SIGHUP, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH)


def stop_signal_queued(inherited_handler: Any) -> int | None:
    """The first TERM/INT/QUIT queued by the arbiter's signal handler a forked worker inherited, else None.

    Between ``fork()`` and the worker's ``init_signals`` the child still runs the master's handler
    (gunicorn/arbiter.py ``Arbiter.signal``: ``SIG_QUEUE.put_nowait(sig)``), so a stop signal the master sent
    to this new worker lands in the child's copy of ``SIG_QUEUE``, which nothing in the child reads. A stop
    signal the master had queued before the fork is there too; the master is then about to stop every worker,
    so exiting is right either way. Other signals (HUP, TTIN, CHLD, ...) are the master's business: ignored.
    The child's copy is drained (it is never read again). ``inherited_handler`` is ``signal.getsignal(SIGTERM)``
    before the reset; anything but a bound ``Arbiter`` method yields None.
    """
    arbiter = getattr(inherited_handler, "__self__", None)
    queue = getattr(arbiter, "SIG_QUEUE", None) if isinstance(arbiter, Arbiter) else None
    found = None
    while queue is not None and not queue.empty():
        sig = queue.get_nowait()
        if found is None and sig in STOP_SIGNALS:
            found = sig
    return found


def drain_timeout(timeout: float, graceful_timeout: float) -> float:
    """Seconds a worker may drain in-flight requests: below both gunicorn deadlines, with a margin.

    The arbiter SIGKILLs workers still alive at ``graceful_timeout`` (arbiter ``stop``) and kills a worker
    whose heartbeat is older than ``timeout`` (``murder_workers``); the margin (10 %, 1–5 s) leaves time for
    the worker to close connections and exit after the drain. ``timeout`` 0 means "no worker timeout" in
    gunicorn (``--timeout 0``): only ``graceful_timeout`` bounds the drain then.
    """
    bound = float(min(timeout, graceful_timeout) if timeout > 0 else graceful_timeout)
    margin = min(5.0, max(1.0, bound * 0.1))
    return bound - margin if bound > margin else bound / 2


def idle_grace(keepalive: float, drain: float) -> float:
    """Seconds an idle keep-alive connection stays open once a drain starts (≤ IDLE_GRACE, keepalive, drain/4)."""
    return min(IDLE_GRACE, float(keepalive), drain / 4)


def draining_protocol(grace: float) -> type:
    """An ``HttpToolsProtocol`` whose graceful ``shutdown()`` does not race clients on idle connections.

    HTTP/1.1 lets a client send on an idle persistent connection at any moment (RFC 9112 §9.3.1/§9.6); a
    server that closes it then resets a request already in flight. During a drain the next response on each
    connection carries ``Connection: close`` and idle connections are closed after ``grace`` seconds.
    """

    class DrainingHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        draining = False

        def shutdown(self) -> None:
            self.draining = True
            if self.cycle is None or self.cycle.response_complete:
                self._unset_keepalive_if_required()
                self.timeout_keep_alive_task = self.loop.call_later(grace, self.timeout_keep_alive_handler)
            else:
                self.cycle.keep_alive = False

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            if self.draining and self.cycle is not None:
                self.cycle.keep_alive = False

    return DrainingHttpToolsProtocol


class ServingServer(Server):
    """uvicorn ``Server`` that records why it stops, logs the shutdown stages and supports a quick exit."""

    def __init__(self, config: Config, *, log: Any, gate: RecycleGate | None = None) -> None:
        super().__init__(config)
        self.log = log
        self.cause: str | None = None
        self.pid = os.getpid()
        self._aborted = False
        self.gate = gate
        # The limit is checked here (on_tick), not by uvicorn: a worker waits for its turn to recycle.
        self.recycle_at = self.limit_max_requests
        self.__dict__["limit_max_requests"] = None  # uvicorn's cached_property: off

    async def startup(self, sockets: Any = None) -> None:
        """uvicorn's startup, then: accepting (for the stagger), and the boot CPU time logged once."""
        await super().startup(sockets)
        # Logged before the marker exists, so the log never shows a sibling's recycle before this line.
        self.log.info("Worker %s accepting: boot took %.3fs CPU", self.pid, time.process_time())
        if self.gate is not None:
            self.gate.mark_accepting()

    async def on_tick(self, counter: int) -> bool:
        """uvicorn's tick; at the request limit, recycle only when the stagger gate gives this worker its turn."""
        if await super().on_tick(counter):
            return True
        if self.recycle_at is None or self.server_state.total_requests < self.recycle_at:
            return False
        return self.gate is None or self.gate.take_turn(limit=self.recycle_at, log=self.log)

    def handle_exit(self, sig: int, frame: Any) -> None:
        """Signal handler for INT/TERM (installed by uvicorn's ``capture_signals``): record only, no logging."""
        if self.cause is None:
            self.cause = f"{signal.Signals(sig).name} (graceful)"
        super().handle_exit(sig, frame)
        if self.force_exit:
            self.cause = f"second {signal.Signals(sig).name} (quick)"

    def quick_exit(self) -> None:
        """SIGQUIT: stop at once, dropping in-flight requests."""
        self.cause = "SIGQUIT (quick)"
        self.should_exit = True
        self.force_exit = True

    def _abort_connections(self) -> int:
        connections = list(self.server_state.connections)
        for connection in connections:
            connection.transport.close()
        return len(connections)

    def _abort_once(self) -> None:
        if self._aborted:
            return
        self._aborted = True
        in_flight = len(self.server_state.tasks)
        closed = self._abort_connections()
        self.log.warning(
            "Worker %s shutdown: quick exit (%s): closed %d connection(s), %d in-flight request(s) dropped",
            self.pid,
            self.cause,
            closed,
            in_flight,
        )

    async def _abort_when_forced(self) -> None:
        # uvloop's Server.wait_closed() waits for every connection: close them so a quick exit is quick.
        while not self.force_exit:
            await asyncio.sleep(0.05)
        self._abort_once()

    async def _drain_makes(self, remaining: float) -> None:
        """Wait for make commands this worker is sending (durable dispense): they outlive their requests."""
        pending = background.in_flight()
        if not pending:
            return
        self.log.info("Worker %s shutdown 2/3: waiting for %d in-flight make command(s)", self.pid, pending)
        left = await background.drain(remaining)
        if left:
            self.log.error(
                "Worker %s shutdown: %d make command(s) still in flight at the drain deadline "
                "(the sweeper flags them make_unknown)",
                self.pid,
                left,
            )

    async def shutdown(self, sockets: Any = None) -> None:
        """Log stages around uvicorn's shutdown; mark readiness draining first."""
        probes.mark_shutting_down()
        if self.gate is not None:
            self.gate.mark_stopped()
        cause = self.cause or f"max requests ({self.recycle_at}) reached, recycling"
        deadline = self.config.timeout_graceful_shutdown
        self.log.info("Worker %s shutdown 1/3: stop accepting new connections (cause: %s)", self.pid, cause)
        self.log.info(
            "Worker %s shutdown 2/3: draining %d in-flight request(s) on %d connection(s), deadline %.1fs",
            self.pid,
            len(self.server_state.tasks),
            len(self.server_state.connections),
            deadline,
        )
        started = time.monotonic()
        aborter = asyncio.create_task(self._abort_when_forced())
        try:
            await super().shutdown(sockets)
            if not self.force_exit:
                await self._drain_makes(deadline - (time.monotonic() - started))
        finally:
            aborter.cancel()
        if self.force_exit:
            # The drain loop may notice force_exit before the aborter does; close what is left so pending
            # requests are dropped, not answered 500 when asyncio cancels their tasks at loop teardown.
            self._abort_once()
        elapsed = time.monotonic() - started
        cancelled = len(self.server_state.tasks)
        if self.force_exit:
            self.log.info("Worker %s shutdown 3/3: quick exit after %.2fs", self.pid, elapsed)
        elif cancelled:
            self.log.error(
                "Worker %s shutdown 3/3: drain deadline %.1fs exceeded, %d request(s) cancelled",
                self.pid,
                deadline,
                cancelled,
            )
        else:
            self.log.info("Worker %s shutdown 3/3: drained in %.2fs, exiting 0", self.pid, elapsed)
        # uvicorn re-raises captured signals after serve() (uvicorn#894), which would make the worker die by
        # SIGTERM instead of exiting 0 through gunicorn's normal path ("Worker exiting").
        self._captured_signals.clear()


class ServingUvicornWorker(UvicornWorker):
    """gunicorn ``worker_class`` for this project (``coffee_payment.serving.worker.ServingUvicornWorker``)."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "auto", "http": "auto", "lifespan": "off"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        drain = drain_timeout(self.cfg.timeout, self.cfg.graceful_timeout)
        self.config.timeout_graceful_shutdown = drain  # type: ignore[assignment]
        # A subclass that picks its HTTP implementation (upstream's UvicornH11Worker pattern: "http": "h11")
        # keeps it; the idle-connection grace exists for the httptools protocol only.
        if HttpToolsProtocol is not None and self.CONFIG_KWARGS.get("http", "auto") in ("auto", "httptools"):
            self.config.http = draining_protocol(idle_grace(self.cfg.keepalive, drain))
        self.server: ServingServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def init_signals(self) -> None:
        """UvicornWorker's reset to default dispositions, then TERM/INT/QUIT handlers for the boot window.

        Between fork and uvicorn's ``capture_signals`` (the app import takes ~1 s) a TERM would kill the worker
        by its default action: no stage log, and the arbiter reports "was sent SIGTERM!". This worker accepts
        nothing before uvicorn replaces these handlers, so it has nothing to drain: log it and leave with
        ``os._exit(0)``. Not ``sys.exit``: a SystemExit raised at an arbitrary line can be swallowed — CPython
        3.11's constant folder discards exceptions while compiling a module (Django's ``2**31 - 4`` in
        ``http/multipartparser.py``; no bytecode cache under PYTHONDONTWRITEBYTECODE), and the worker would then
        finish booting and serve after the stop. Nothing needs a clean interpreter exit here: the app is not
        serving, and gunicorn already unlinked the heartbeat file.
        """
        inherited = signal.getsignal(signal.SIGTERM)
        super().init_signals()
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._exit_during_boot)
        for sig in MASTER_ONLY_SIGNALS:
            signal.signal(sig, self._ignore_master_signal)
        # A stop signal that arrived before the reset went to the arbiter's inherited handler (stop_signal_queued).
        queued = stop_signal_queued(inherited)
        # Earlier still, before the child's first Python code, CPython drops a pending signal after fork
        # (_PySignal_AfterFork): the master's stopping marker, created before it signals, says what was lost.
        if queued is None and stopping_marker(self.ppid, self.cfg.worker_tmp_dir).exists():
            queued = signal.SIGTERM
        if queued is not None:
            self._exit_during_boot(queued, None)

    def _exit_during_boot(self, sig: int, frame: Any) -> None:
        # uvicorn restores these handlers after serve(); a signal then finds a worker already on its way out.
        if self.server is not None:
            sys.exit(0)
        try:
            self.log.info(
                "Worker %s shutdown during boot (cause: %s): this worker accepted no connection, exiting 0",
                self.pid,
                signal.Signals(sig).name,
            )
        finally:  # e.g. "reentrant call" if the signal interrupted a write to the same stream
            os._exit(0)

    def _ignore_master_signal(self, sig: int, frame: Any) -> None:
        # Logged from the event loop, not from the handler (a handler interrupting a write to the same stream
        # would fail with "reentrant call"); during boot and after serve() nothing is logged.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            name = signal.Signals(sig).name
            loop.call_soon_threadsafe(
                self.log.warning,
                "Worker %s ignored %s: a signal for the gunicorn master, not its workers",
                self.pid,
                name,
            )

    def _install_sigquit_handler(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGQUIT, self._handle_quit)

    def _handle_quit(self) -> None:
        if self.server is not None:
            self.server.quick_exit()

    async def _heartbeat(self) -> None:
        # The arbiter's heartbeat check proves the event loop runs; uvicorn only notifies from its main loop,
        # which has ended while draining (gunicorn/arbiter.py murder_workers).
        interval = max(0.1, min(1.0, self.cfg.timeout / 4))
        while True:
            self.notify()
            self._stop_if_orphaned()
            await asyncio.sleep(interval)

    def _stop_if_orphaned(self) -> None:
        """Drain and exit once the master is gone (gunicorn's own workers: "Parent changed, shutting down").

        A master killed without stopping its workers (SIGKILL, the OOM killer) left them serving unsupervised,
        holding the listening socket, so a new master could not bind the port; UvicornWorker never checks.
        """
        server = self.server
        if server is None or server.should_exit or os.getppid() == self.ppid:
            return
        self.log.warning("Worker %s: parent changed (master %s gone), shutting down", self.pid, self.ppid)
        server.cause = f"master {self.ppid} gone (graceful)"
        server.should_exit = True

    def _recycle_gate(self) -> RecycleGate | None:
        try:
            directory = shared_directory(self.ppid, self.cfg.worker_tmp_dir)
        except OSError as exc:  # no usable temporary directory (tempfile.gettempdir)
            self.log.warning("Worker %s: recycles not staggered (%s)", self.pid, exc)
            return None
        # A sibling's turn takes its drain plus its replacement's boot: wait up to twice the heartbeat timeout.
        return RecycleGate(directory, pid=self.pid, workers=self.cfg.workers, max_wait=2.0 * self.cfg.timeout)

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        self.server = ServingServer(config=self.config, log=self.log, gate=self._recycle_gate())
        self._loop = asyncio.get_running_loop()
        self._install_sigquit_handler()
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            # Raw sockets, not gunicorn's wrappers: uvloop then detaches instead of closing the wrapper after
            # libuv closed the fd ("Error while closing socket [Errno 9]" at every shutdown).
            await self.server.serve(sockets=[getattr(s, "sock", s) for s in self.sockets])
        finally:
            heartbeat.cancel()
            interval = max(0.1, min(1.0, self.cfg.timeout / 4))
            # Bounded like a stop: the master gives a stopping worker graceful_timeout before its SIGKILL.
            budget = max(self.cfg.timeout, self.cfg.graceful_timeout)
            heartbeat_until_exit(os.dup(self.tmp.fileno()), interval=interval, budget=budget, log=self.log)
        if not self.server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
