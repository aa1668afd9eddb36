"""Graceful-shutdown drill: drive load at a production server, deliver an event, account for every request.

Client-side accounting per request (the drill's own definition, used in the report and the verdict):
- ``completed``: a response arrived with a status below 500 (codes are counted);
- ``refused``: the connection was refused or never established, so nothing was sent — expected once the
  listener has closed;
- ``lost``: the request was sent and got no usable response: reset, EOF, a read timeout, or a 5xx (uvicorn
  answers 500 for requests it cancels at the drain deadline) — a failure.

Events: ``term``, ``int``, ``quit`` (signals to the master), ``hup`` (reload), ``recycle`` (max_requests small
enough to recycle workers during the run), ``kill-worker`` (SIGKILL one worker) and ``k8s`` (the drain file is
touched so /readyz answers 503, a preStop wait while traffic continues, then TERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from coffee_payment.serving.worker import drain_timeout
from devtools import drill_dispense
from devtools.metrics_scrape import MetricsWatch
from devtools.processes import child_pids, connection_refused, free_port, requests_picked_up
from devtools.stack import ONE_CLIENT_ENV, Stack, StackConfig

EVENTS = ("term", "int", "quit", "recycle", "kill-worker", "hup", "k8s")
SIGNALS = {"term": signal.SIGTERM, "int": signal.SIGINT, "quit": signal.SIGQUIT, "hup": signal.SIGHUP}
# Events after which the master is expected to exit.
STOPPING = ("term", "int", "quit", "k8s")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# kill-worker: the arbiter must have forked the replacement within this many seconds of the kill.
REPLACE_WITHIN_S = 10.0
STAGE_LINE = re.compile(
    r"(Master shutdown \d/\d.*|Worker \d+ shutdown \d/\d.*|Handling signal.*|Booting worker.*"
    r"|Worker exiting.*|WORKER TIMEOUT.*|was sent SIG\w+.*|Shutting down: Master.*)"
)


@dataclass
class DrillOptions:
    """Drill parameters; durations in seconds."""

    event: str = "term"
    duration: float = 12.0
    warmup: float = 3.0
    clients: int = 6
    inflight: int = 4
    inflight_seconds: float = 3.0
    graceful_timeout: int = 10
    workers: int = 2
    prestop: float = 3.0
    max_requests: int = 60
    dispenses: int = 2
    url: str | None = None
    pid: int | None = None
    drain_file: str | None = None
    json_path: str | None = None
    quiet: bool = False

    @property
    def worker_timeout(self) -> int:
        """GUNICORN_TIMEOUT of the drill's own server: at least 30 s and never below the graceful timeout."""
        return max(30, self.graceful_timeout)

    def validate(self) -> None:
        """Raise ValueError naming the first bad option."""
        if self.event not in EVENTS:
            raise ValueError(f"--event must be one of {', '.join(EVENTS)}, not {self.event!r}")
        if (self.url is None) != (self.pid is None):
            raise ValueError("--url and --pid go together (target a running server)")
        if self.url is not None:
            loopback_origin(self.url)
        if self.pid is not None:
            cmdline = Path(f"/proc/{self.pid}/cmdline")
            if self.pid <= 1 or not cmdline.exists() or b"gunicorn" not in cmdline.read_bytes():
                raise ValueError(f"--pid {self.pid} is not a running gunicorn master")
            if self.event == "k8s" and not self.drain_file:
                raise ValueError("--event k8s with --url needs --drain-file (the server's SERVING_DRAIN_FILE)")
        if self.json_path and not Path(self.json_path).resolve().parent.is_dir():
            raise ValueError(f"--json {self.json_path}: directory does not exist")
        if self.url is not None and self.event == "recycle":
            raise ValueError("--event recycle needs the drill's own server (it sets GUNICORN_MAX_REQUESTS)")
        for name in ("duration", "warmup", "inflight_seconds", "prestop"):
            value = getattr(self, name)
            if not math.isfinite(value) or not 0 <= value <= 3600:
                raise ValueError(f"--{name.replace('_', '-')} must be a number of seconds in 0..3600")
        if self.clients < 1 or self.inflight < 0 or self.workers < 1 or self.graceful_timeout < 1:
            raise ValueError("--clients, --workers and --graceful-timeout must be >= 1, --inflight >= 0")
        if not 0 <= self.dispenses <= 50:
            raise ValueError("--dispenses must be in 0..50")


def loopback_origin(url: str) -> tuple[str, int]:
    """(host, port) of ``http://<loopback host>:<port>[/]``; ValueError naming ``--url`` for anything else.

    The drill's traffic stays on this machine, and it exercises the server's own paths, so a path, query,
    fragment or user part (which would make every request a 404 and the verdict meaningless) is refused.
    """
    problem = f"--url {url!r} must be http://<loopback host>:<port> (drill traffic stays on this machine)"
    try:
        target = urlsplit(url)
        port = target.port
    except ValueError:
        raise ValueError(problem) from None
    extra = target.path not in ("", "/") or target.query or target.fragment or "@" in target.netloc
    if target.scheme.lower() != "http" or target.hostname not in LOOPBACK_HOSTS or port is None or extra:
        raise ValueError(problem)
    return target.hostname, port


@dataclass
class Tally:
    """Counts of one request class (steady or in-flight)."""

    sent: int = 0
    completed: int = 0
    refused: int = 0
    lost: int = 0
    codes: Counter = field(default_factory=Counter)
    lost_kinds: Counter = field(default_factory=Counter)
    retried: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def record(self, outcome: str, *, code: int | None = None, kind: str = "", latency: float = 0.0) -> None:
        if outcome == "completed" and code is not None and code >= 500:
            outcome, kind = "lost", f"HTTP {code}"
        self.sent += outcome != "refused"
        if outcome == "completed":
            self.completed += 1
            self.codes[str(code)] += 1
            self.latencies.append(latency)
        elif outcome == "refused":
            self.refused += 1
        else:
            self.lost += 1
            self.lost_kinds[kind] += 1

    @property
    def attempted(self) -> int:
        """Requests tried: completed + refused + lost (``sent`` is completed + lost)."""
        return self.sent + self.refused

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None

        return {
            "attempted": self.attempted,
            "sent": self.sent,
            "completed": self.completed,
            "refused": self.refused,
            "lost": self.lost,
            "codes": dict(self.codes),
            "lost_kinds": dict(self.lost_kinds),
            "retried_after_reset": dict(self.retried),
            "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
        }


def progress_line(elapsed: float, steady: Tally, inflight: Tally, inflight_total: int, phase: str) -> str:
    """The running counts, in the terms and order of the summary (:func:`render`): attempted = completed +
    refused + lost."""
    s, i = steady, inflight
    return (
        f"t={elapsed:5.1f}s  steady: {s.attempted} attempted: {s.completed} completed, {s.refused} refused, "
        f"{s.lost} lost  in-flight: {i.completed}/{inflight_total} completed, {i.lost} lost  {phase}"
    )


# Connection closed or reset before any response byte (no read timeout: that request may be in progress).
RETRYABLE = ("RemoteProtocolError", "ReadError")


def classify(exc: httpx.HTTPError) -> tuple[str, str]:
    """(outcome, kind) for a failed request: nothing sent → ``refused``; sent without answer → ``lost``."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return "refused", type(exc).__name__
    return "lost", type(exc).__name__


class Drill:
    """One drill run. ``run()`` returns the report dict; ``passed`` and ``reasons`` give the verdict."""

    def __init__(self, options: DrillOptions) -> None:
        options.validate()
        self.o = options
        self.steady = Tally()
        self.inflight = Tally()
        self.inflight_results: list[dict[str, Any]] = []
        self.timeline: dict[str, float] = {}
        self.reasons: list[str] = []
        self.stack: Stack | None = None
        self.base_url = options.url.rstrip("/") if options.url else ""
        self.host, self.port = "", 0  # of base_url, set when the load starts
        self.master_pid = options.pid or 0
        self._tmp = Path(tempfile.mkdtemp(prefix="drill-"))
        self.drain_file = Path(options.drain_file) if options.drain_file else self._tmp / "drain"
        self.exit_code: int | None = None
        self._stop = threading.Event()
        self._inflight_tasks: list[asyncio.Task] = []
        self._replacement: asyncio.Task | None = None  # kill-worker: the wait for the replacement, from the kill
        self._t0 = 0.0
        self.dispense_probe: drill_dispense.DispenseProbe | None = None
        self.dispenses: dict[str, Any] | None = None
        self._event_monotonic = 0.0
        self.metrics: MetricsWatch | None = None  # the drill's own server only (its metrics listener)

    # --- server ---------------------------------------------------------------------------------------------
    def _start_server(self) -> None:
        env = {
            "SERVING_TEST_ENDPOINTS": "1",
            "SERVING_DRAIN_FILE": str(self.drain_file),
            "GUNICORN_WORKERS": str(self.o.workers),
            "GUNICORN_GRACEFUL_TIMEOUT": str(self.o.graceful_timeout),
            "GUNICORN_TIMEOUT": str(self.o.worker_timeout),
            **drill_dispense.STACK_ENV,
            **ONE_CLIENT_ENV,
            "METRICS_PORT": str(metrics_port := free_port()),
            "METRICS_BIND_HOST": "127.0.0.1",
        }
        self.metrics = MetricsWatch(f"http://127.0.0.1:{metrics_port}/metrics")
        if self.o.event == "recycle":
            env.update(GUNICORN_MAX_REQUESTS=str(self.o.max_requests), GUNICORN_MAX_REQUESTS_JITTER="10")
        var_dir = self._tmp / "var"
        self.stack = Stack(StackConfig(mode="prod", var_dir=var_dir, env=env, log_to=var_dir / "logs"))
        self.stack.start()
        self.base_url = self.stack.base_url
        self.master_pid = self.stack.server.pid
        # Paid orders whose make is in flight at the event: Tmetr answers them after the in-flight duration.
        latency = min(self.o.inflight_seconds, drill_dispense.TMETR_READ_S - 1)
        self.dispense_probe = drill_dispense.DispenseProbe(self.stack, count=self.o.dispenses, latency=latency)

    def _server_log(self) -> str:
        if self.stack is None or self.stack.config.log_to is None:
            return ""
        path = self.stack.config.log_to / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _master_alive(self) -> bool:
        if self.stack is not None:
            return self.stack.server.poll() is None
        try:
            os.kill(self.master_pid, 0)
        except ProcessLookupError:
            return False
        return True

    # --- load -----------------------------------------------------------------------------------------------
    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _order_path(self) -> str:
        """A status-JSON path on a real order (created through the QR link), or /health when none can be made."""
        if self.stack is None or not self.stack.qr_links:
            return "/health"
        response = httpx.get(self.stack.qr_links[-1], follow_redirects=False, timeout=10)
        order_id = response.headers.get("location", "").split("order_id=")[-1]
        return f"/v1/order-status/{order_id}" if order_id else "/health"

    async def _steady_client(self, paths: list[str]) -> None:
        timeout = httpx.Timeout(self.o.graceful_timeout + 5.0, connect=2.0)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, limits=httpx.Limits(max_connections=1)
        ) as client:
            i = 0
            while not self._stop.is_set():
                path = paths[i % len(paths)]
                i += 1
                started = time.monotonic()
                outcome, kind, response = await self._get(client, path)
                if outcome == "lost" and kind in RETRYABLE:
                    # An idempotent GET whose connection closed before any response byte: clients, browsers and
                    # proxies retry it once on a new connection (RFC 9112 §9.3.1); so does the drill, and counts it.
                    self.steady.retried[kind] += 1
                    outcome, kind, response = await self._get(client, path)
                if response is not None:
                    self.steady.record("completed", code=response.status_code, latency=time.monotonic() - started)
                else:
                    self.steady.record(outcome, kind=kind)
                if outcome == "refused":
                    await asyncio.sleep(0.05)  # listener closed: don't spin
                await asyncio.sleep(0.005)

    @staticmethod
    async def _get(client: httpx.AsyncClient, path: str) -> tuple[str, str, httpx.Response | None]:
        try:
            return "completed", "", await client.get(path)
        except httpx.HTTPError as exc:
            return (*classify(exc), None)

    async def _inflight_request(self, index: int) -> None:
        timeout = httpx.Timeout(self.o.graceful_timeout + 10.0, connect=2.0)
        started = self._now()
        result: dict[str, Any] = {"index": index, "started_at": round(started, 3)}
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout) as client:
            try:
                response = await client.get("/_test/sleep", params={"seconds": self.o.inflight_seconds})
                self.inflight.record("completed", code=response.status_code, latency=self._now() - started)
                result.update(
                    outcome="completed", status=response.status_code, worker_pid=response.headers.get("x-worker-pid")
                )
            except httpx.HTTPError as exc:
                outcome, kind = classify(exc)
                self.inflight.record(outcome, kind=kind)
                result.update(outcome=outcome, error=kind)
        result["ended_at"] = round(self._now(), 3)
        self.inflight_results.append(result)

    # --- event ----------------------------------------------------------------------------------------------
    async def _launch_inflight(self) -> None:
        """Start the long requests just before the signal, so they are in flight when it lands."""
        self._inflight_tasks = [asyncio.create_task(self._inflight_request(n)) for n in range(self.o.inflight)]
        # Wait until the workers hold every connection (steady + in-flight) and have read the requests, bounded
        # by half the in-flight duration so a slow pick-up still leaves the requests in flight at the signal.
        deadline = time.monotonic() + self.o.inflight_seconds / 2
        await asyncio.sleep(0.05)
        while time.monotonic() < deadline and not requests_picked_up(self.port, self.o.clients + self.o.inflight):
            await asyncio.sleep(0.01)

    async def _launch_dispenses(self) -> None:
        if self.dispense_probe is not None:
            await self.dispense_probe.launch(wait_s=self.o.inflight_seconds / 2)

    async def _deliver_event(self) -> None:
        event = self.o.event
        if event != "k8s":
            await self._launch_dispenses()
            await self._launch_inflight()
        if self.metrics is not None:
            self.metrics.mark()
        self.timeline["event_at"] = self._now()
        self._event_monotonic = time.monotonic()
        if event in SIGNALS:
            os.kill(self.master_pid, SIGNALS[event])
        elif event == "kill-worker":
            workers = child_pids(self.master_pid)
            if not workers:
                self.reasons.append("no worker to kill")
                return
            self.killed_worker = workers[0]
            os.kill(self.killed_worker, signal.SIGKILL)
            self._replacement = asyncio.create_task(self._wait_replacement())  # timed from the kill
        elif event == "k8s":
            self.drain_file.touch()
            self.timeline["drain_requested_at"] = self._now()
            await self._wait_readiness_draining()
            await asyncio.sleep(self.o.prestop)
            await self._launch_dispenses()
            await self._launch_inflight()
            self.timeline["term_at"] = self._now()
            self._event_monotonic = time.monotonic()
            os.kill(self.master_pid, signal.SIGTERM)
        # recycle: nothing to deliver — max_requests does it.

    async def _wait_readiness_draining(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    if (await client.get("/readyz")).status_code == 503:
                        self.timeline["readiness_503_at"] = self._now()
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        self.reasons.append("readiness did not flip to 503 within 5 s of the drain request")

    def _watch_listener(self) -> None:
        """Record when the listener stops accepting (connection refused) after the event."""
        while not self._stop.is_set():
            if "event_at" in self.timeline and "listener_closed_at" not in self.timeline:
                with contextlib.suppress(OSError):  # a timeout or reset is not "closed"
                    if connection_refused(self.port, self.host, timeout=0.5):
                        self.timeline["listener_closed_at"] = self._now()
            time.sleep(0.02)

    def _watch_master(self) -> None:
        while not self._stop.is_set():
            if not self._master_alive():
                self.timeline["master_exit_at"] = self._now()
                if self.stack is not None:
                    self.exit_code = self.stack.server.returncode
                return
            time.sleep(0.02)

    def _progress(self) -> None:
        """Print the running counts (on one rewritten line on a terminal); the last line is the final count."""
        tty = os.isatty(1)
        while True:
            stopping = self._stop.is_set()
            phase = "event sent" if "event_at" in self.timeline else "warming up"
            line = progress_line(self._now(), self.steady, self.inflight, self.o.inflight, phase)
            print(f"\r{line}   " if tty else line + "\n", end="", flush=True)
            if stopping:
                break
            self._stop.wait(0.5 if tty else 2.0)
        print()

    async def _run_load(self) -> None:
        paths = [self._order_path(), "/health"]
        self.host, self.port = loopback_origin(self.base_url)
        self.workers_before = child_pids(self.master_pid)
        threads = [
            threading.Thread(target=self._watch_listener, daemon=True),
            threading.Thread(target=self._watch_master, daemon=True),
        ]
        if not self.o.quiet:
            threads.append(threading.Thread(target=self._progress, daemon=True))
        if self.metrics is not None:
            threads.append(threading.Thread(target=self.metrics.run, args=(self._stop,), daemon=True))
        self._t0 = time.monotonic()
        for thread in threads:
            thread.start()
        steady = [asyncio.create_task(self._steady_client(paths)) for _ in range(self.o.clients)]
        await asyncio.sleep(self.o.warmup)
        await self._deliver_event()
        end = self._t0 + max(self.o.duration, self.o.warmup + 1)
        if self.o.event in STOPPING:  # run until the master exits (bounded by the graceful timeout + margin)
            end = max(
                end, time.monotonic() + self.o.graceful_timeout + 5 + (self.o.prestop if self.o.event == "k8s" else 0)
            )
        while time.monotonic() < end:
            if self.o.event in STOPPING and "master_exit_at" in self.timeline:
                break
            await asyncio.sleep(0.05)
        await asyncio.gather(*self._inflight_tasks)
        if self._replacement is not None:
            await self._replacement
        self.workers_after = child_pids(self.master_pid) if self._master_alive() else []
        self._stop.set()
        for task in steady:
            task.cancel()
        await asyncio.gather(*steady, return_exceptions=True)
        for thread in threads:
            thread.join(timeout=2)

    async def _wait_replacement(self) -> None:
        """Started at the kill: wait (at most ``REPLACE_WITHIN_S`` seconds) for the arbiter to fork a worker in the
        killed one's place, and record ``worker_replaced_at`` on the timeline when a new pid is up and the count is
        back. The verdict awaits it after the in-flight requests.

        The arbiter reaps the killed worker on SIGCHLD and forks its replacement on its next loop turn; on a
        loaded machine that takes from a few ms to about a second, so one look right after the in-flight
        requests failed can miss it (CI saw ``[a, b] → [b]`` while the log already showed the new worker)."""
        deadline = time.monotonic() + REPLACE_WITHIN_S
        while self._master_alive() and time.monotonic() < deadline:
            now = child_pids(self.master_pid)
            if set(now) - set(self.workers_before) and len(now) >= len(self.workers_before):
                self.timeline["worker_replaced_at"] = self._now()
                return
            await asyncio.sleep(0.05)

    # --- verdict --------------------------------------------------------------------------------------------
    def _judge(self) -> None:
        o = self.o
        # An in-flight request "fits" when it ends within the worker's drain budget (same formula as the worker).
        budget = drain_timeout(o.worker_timeout, o.graceful_timeout)
        fits = o.inflight_seconds <= budget
        if o.event == "kill-worker":
            # The killed worker's requests are necessarily lost; the verdict is about recovery.
            if not set(self.workers_before) - set(self.workers_after) or len(self.workers_after) < len(
                self.workers_before
            ):
                self.reasons.append(f"the killed worker was not replaced within {REPLACE_WITHIN_S:g} s")
        else:
            if self.steady.lost:
                self.reasons.append(f"{self.steady.lost} steady request(s) lost ({dict(self.steady.lost_kinds)})")
            if self.inflight.completed < o.inflight:
                why = "they fit the drain budget" if fits else f"longer than the drain budget of {budget:g}s"
                self.reasons.append(
                    f"{o.inflight - self.inflight.completed} of {o.inflight} in-flight request(s) lost ({why})"
                )
        if o.event in STOPPING:
            exit_at = self.timeline.get("master_exit_at")
            signal_at = self.timeline.get("term_at", self.timeline.get("event_at", 0.0))
            if exit_at is None:
                self.reasons.append("the master did not exit")
            elif exit_at - signal_at > o.graceful_timeout + 1:
                self.reasons.append(
                    f"the master exited {exit_at - signal_at:.1f}s after the signal "
                    f"(graceful timeout {o.graceful_timeout}s)"
                )
            if self.exit_code not in (0, None):
                self.reasons.append(f"the master exited with code {self.exit_code}")
        self.reasons += drill_dispense.judge(self.dispenses or {})
        if o.event in ("recycle", "hup") and not set(self.workers_before) - set(self.workers_after):
            self.reasons.append("no worker was replaced")
        if o.event == "k8s" and self.steady.refused and self.timeline.get("term_at"):
            early = self.timeline.get("listener_closed_at", 1e9) < self.timeline["term_at"]
            if early:
                self.reasons.append("the listener closed during the preStop wait")

    def report(self) -> dict[str, Any]:
        """Every figure of the run (the ``--json`` file)."""
        t = {k: round(v, 3) for k, v in self.timeline.items()}
        signal_at = t.get("term_at", t.get("event_at"))

        def since(key: str) -> float | None:
            return round(t[key] - signal_at, 3) if key in t and signal_at is not None else None

        ends = [r["ended_at"] for r in self.inflight_results if r.get("outcome") == "completed"]
        log_lines = [m.group(0) for m in STAGE_LINE.finditer(getattr(self, "_stage_log", "") or self._server_log())]
        return {
            "options": asdict(self.o),
            "passed": not self.reasons,
            "reasons": self.reasons,
            "steady": self.steady.summary(),
            "inflight": {
                **self.inflight.summary(),
                "requests": sorted(self.inflight_results, key=lambda r: r["index"]),
            },
            "dispenses": self.dispenses,
            "metrics": self.metrics.summary() if self.metrics is not None else None,
            "timeline_s": t,
            "server": {
                "master_pid": self.master_pid,
                "exit_code": self.exit_code,
                "signal_to_listener_closed_s": since("listener_closed_at"),
                "signal_to_last_inflight_completed_s": round(max(ends) - signal_at, 3) if ends and signal_at else None,
                "signal_to_master_exit_s": since("master_exit_at"),
                "signal_to_worker_replaced_s": since("worker_replaced_at"),
                "workers_before": self.workers_before,
                "workers_after": self.workers_after,
                "killed_worker": getattr(self, "killed_worker", None),
                "stage_log": log_lines[-40:],
            },
        }

    def run(self) -> dict[str, Any]:
        """Start (or target) the server, run the load and the event, judge, stop everything; the report."""
        try:
            if self.o.url is None:
                self._start_server()
            self.workers_before: list[int] = []
            self.workers_after: list[int] = []
            asyncio.run(self._run_load())
            if self.dispense_probe is not None:
                self.dispenses = self.dispense_probe.account(event_at=self._event_monotonic)
            self._judge()
        finally:
            if self.stack is not None:
                self.stack.stop(timeout=self.o.graceful_timeout + 5)
                if self.exit_code is None and self.o.event in STOPPING:
                    self.exit_code = self.stack.server.returncode
            self._stage_log = self._server_log()
            shutil.rmtree(self._tmp, ignore_errors=True)
        result = self.report()
        if self.o.json_path:
            Path(self.o.json_path).write_text(json.dumps(result, indent=2))
        return result


def metrics_row(metrics: dict[str, Any] | None) -> str:
    """The drill's metrics since the event: coffee_worker_drain_seconds has no pid label (no per-worker series by
    design), so drains are a count and a total; restarts by reason from coffee_worker_restarts_total."""
    if not metrics:
        return "— (no metrics: a server given by --url, or the listener never answered)"
    if "error" in metrics:
        return f"— ({metrics['error']})"
    drains = metrics["drains"]
    mean = f", {metrics['drain_s'] / drains:.2f} s each on average" if drains else ""
    restarts = ", ".join(f"{r} {n:.0f}" for r, n in metrics["restarts"].items() if n) or "none"
    return (
        f"{drains:.0f} worker drain(s), {metrics['drain_s']:.2f} s in all{mean} (no per-worker series: the drain "
        f"histogram has no pid label); restarts: {restarts}; last scrape {metrics['last_at']:g} s after the event"
    )


def render(report: dict[str, Any]) -> str:
    """The human-readable table printed after a run."""
    o, s, i, srv = report["options"], report["steady"], report["inflight"], report["server"]

    def fmt(value: Any, unit: str = "s") -> str:
        return "—" if value is None else f"{value}{unit}"

    rows = [
        ("event", o["event"] + (f" (preStop {o['prestop']}s)" if o["event"] == "k8s" else "")),
        (
            "steady requests",
            f"{s['attempted']} attempted: {s['completed']} completed {s['codes']}, "
            f"{s['refused']} refused (expected after close), {s['lost']} lost {s['lost_kinds'] or ''}"
            + (f"; retried after a reset: {s['retried_after_reset']}" if s["retried_after_reset"] else ""),
        ),
        (
            "in-flight requests",
            f"{i['completed']}/{o['inflight']} completed {i['codes']} "
            f"({o['inflight_seconds']}s each), {i['lost']} lost {i['lost_kinds'] or ''}",
        ),
        ("dispenses", drill_dispense.render_row(report.get("dispenses"))),
        ("steady latency", f"p50 {fmt(s['latency_ms']['p50'], ' ms')}, p99 {fmt(s['latency_ms']['p99'], ' ms')}"),
        ("signal → listener closed", fmt(srv["signal_to_listener_closed_s"])),
        ("signal → last in-flight done", fmt(srv["signal_to_last_inflight_completed_s"])),
        ("signal → master exit", fmt(srv["signal_to_master_exit_s"]) + f" (graceful timeout {o['graceful_timeout']}s)"),
        ("master exit code", fmt(srv["exit_code"], "")),
        ("workers before → after", f"{srv['workers_before']} → {srv['workers_after']}"),
        *(
            [("kill → replacement up", fmt(srv.get("signal_to_worker_replaced_s")))]
            if o["event"] == "kill-worker"
            else []
        ),
        ("drains, restarts (metrics)", metrics_row(report.get("metrics"))),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"  {k.ljust(width)}  {v}".rstrip() for k, v in rows]
    lines.append("  server log stages:")
    lines += [f"    {line}" for line in srv["stage_log"][-12:]]
    verdict = "PASS: no request or dispense lost" if report["passed"] else "FAIL: " + "; ".join(report["reasons"])
    return "\n".join(["Graceful-shutdown drill", *lines, verdict])
