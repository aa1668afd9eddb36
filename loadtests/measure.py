"""Measuring tools for the load runner: /proc sampling, wrk, a headless locust run, pinned gunicorn for bare apps."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.debian import ensure_packages
from devtools.launch import gunicorn_command
from devtools.processes import child_pids, free_port, serving_env
from devtools.stack import stop_process, wait_http_ok

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def pinned(core: str | None, argv: list[str]) -> list[str]:
    """``argv`` prefixed with ``taskset -c core`` (exec'd by taskset: the pid stays the program's)."""
    return ["taskset", "-c", core, *argv] if core else argv


def repin(pid: int, core: str) -> None:
    """Move every thread of a running process to ``core`` (e.g. the sandbox, off the server's core)."""
    subprocess.run(["taskset", "-a", "-p", "-c", core, str(pid)], check=True, capture_output=True)


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int, *, with_reaped_children: bool = False) -> float:
    """utime+stime of ``pid`` (fields 14, 15 of /proc/<pid>/stat); plus cutime+cstime (children it has reaped,
    e.g. recycled workers) when asked. 0 for a gone process."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields after "(comm)" start at field 3)
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def rss_mb(pid: int) -> float | None:
    """Resident set size in MiB (/proc/<pid>/statm), None for a gone process."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return None
    return pages * PAGE_KB / 1024


@dataclass
class ServerSample:
    """One look at a server: its processes, their RSS, and the CPU time of the whole tree so far."""

    at: float
    master: int
    workers: list[int]
    rss_mb: dict[str, float | None]
    cpu_s: float
    cpu_by_pid: dict[str, float]

    @classmethod
    def take(cls, master: int) -> ServerSample:
        workers = child_pids(master)
        by_pid = {str(pid): cpu_seconds(pid) for pid in workers}
        # Master + live workers + what the master has reaped (workers recycled or crashed before this sample).
        cpu = cpu_seconds(master, with_reaped_children=True) + sum(by_pid.values())
        rss = {str(pid): rss_mb(pid) for pid in [master, *workers]}
        return cls(time.time(), master, workers, rss, cpu, by_pid)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "master": self.master,
            "workers": self.workers,
            "rss_mb": self.rss_mb,
            "cpu_s": self.cpu_s,
            "cpu_by_pid": self.cpu_by_pid,
        }


def wait_idle(master: int, *, timeout: float = 20.0, busy: float = 0.1, interval: float = 0.5) -> float:
    """Wait until the server tree uses under ``busy`` of a core (the requests still queued after a load window,
    e.g. runserver's backlog, are done) or ``timeout`` passes; returns the seconds waited."""
    started = time.monotonic()
    last = ServerSample.take(master).cpu_s
    while time.monotonic() - started < timeout:
        time.sleep(interval)
        now = ServerSample.take(master).cpu_s
        if now - last < busy * interval:
            break
        last = now
    return time.monotonic() - started


def ensure_wrk() -> str | None:
    """The wrk binary, installed from Debian (apt-get, as root) when missing; None when impossible."""
    with contextlib.suppress(PermissionError, subprocess.CalledProcessError):
        ensure_packages({"wrk": "wrk"})
    return shutil.which("wrk")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(
    url: str, *, seconds: float, connections: int, core: str | None, server_pid: int | None = None
) -> dict[str, Any]:
    """wrk -t1 on ``core`` against ``url``: rps, requests, latency percentiles, errors (non-2xx, socket errors).
    With ``server_pid`` (a gunicorn master or runserver) the server tree's CPU is sampled around the run:
    ``cpu_s`` and ``cpu_ms_per_request`` (CPU milliseconds per completed request of this one route)."""
    binary = ensure_wrk()
    if binary is None:
        return {"error": "wrk not installed (apt-get install wrk, as root)"}
    argv = pinned(core, [binary, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url])
    cpu_before = ServerSample.take(server_pid).cpu_s if server_pid else None
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    result = parse_wrk(done.stdout, done.stderr)
    result.update(url=url, connections=connections, seconds=seconds)
    if cpu_before is not None and server_pid and result.get("requests"):
        result["cpu_s"] = ServerSample.take(server_pid).cpu_s - cpu_before
        result["cpu_ms_per_request"] = result["cpu_s"] * 1000 / result["requests"]
    return result


def parse_wrk(out: str, err: str = "") -> dict[str, Any]:
    """wrk's ``--latency`` output → ``rps``, ``requests``, ``p50_ms``, ``p99_ms``, ``errors`` (only non-zero
    counts); ``error`` (the tail of the output) when no ``Requests/sec`` line was found."""
    result: dict[str, Any] = {}
    if match := re.search(r"^\s*(\d+) requests in ", out, re.M):
        result["requests"] = int(match.group(1))
    if match := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result["rps"] = float(match.group(1))
    for pct in ("50", "99"):
        if match := re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M):
            result[f"p{pct}_ms"] = _ms(match.group(1))
    errors = {}
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors["non_2xx"] = int(match.group(1))
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors.update(zip(("connect", "read", "write", "timeout"), map(int, match.groups()), strict=True))
    result["errors"] = {k: v for k, v in errors.items() if v}
    if "rps" not in result:
        result["error"] = (err or out).strip()[-500:]
    return result


@dataclass
class LocustProfile:
    """The same locust profile for every target."""

    users: int
    spawn_rate: float
    warmup_s: float
    measure_s: float
    extra: list[str]  # profile options passed through, e.g. ["--poll-interval", "0.25"]


def locust_argv(host: str, profile: LocustProfile, report: Path, html: Path | None = None) -> list[str]:
    """The headless locust command line for ``profile`` against ``host``, writing the measured window's report
    to ``report`` (and locust's own HTML report to ``html``); ``--run-time`` is only a backstop (warm-up + window
    + 60 s), the window's end quits locust."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "-u",
        str(profile.users),
        "-r",
        str(profile.spawn_rate),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--run-time",
        f"{int(profile.warmup_s + profile.measure_s + 60)}s",
        "--report-json",
        str(report),
        "--warmup-s",
        str(profile.warmup_s),
        "--measure-s",
        str(profile.measure_s),
        *(["--html", str(html)] if html else []),
        *profile.extra,
    ]


def run_locust(
    host: str,
    profile: LocustProfile,
    *,
    core: str | None,
    workdir: Path,
    master_pid: int,
    log: Path,
    watch: dict[str, int],
    html: Path | None = None,
    on_edge: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], ServerSample | None, ServerSample]:
    """Run the locustfile headless against ``host``; sample the server when the measured window starts and when
    locust is done. Returns (window report, sample at window start, sample at end); the report gets
    ``load_side_cpu_util``: CPU share of locust itself and of the ``watch`` processes (e.g. the sandbox) during
    the window — near 100 % means the load side, not the server, was the limit — and ``workers`` (a
    :class:`WorkerWatch` of the window). ``html``: where locust writes its own HTML report; ``on_edge`` is called
    with ``"start"`` and ``"end"`` at the window's edges (e.g. to scrape the server's metrics)."""
    report = workdir / "locust-window.json"
    started = report.with_name(report.name + ".started")
    for path in (report, started):
        path.unlink(missing_ok=True)
    argv = pinned(core, locust_argv(host, profile, report, html))
    start_sample = None
    workers = WorkerWatch(master_pid)
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        pids = {"locust": proc.pid, **watch}
        cpu_start: dict[str, float] = {}
        cpu_end: dict[str, float] = {}
        try:
            while proc.poll() is None:
                if start_sample is None and started.exists():
                    start_sample = ServerSample.take(master_pid)
                    cpu_start = {name: cpu_seconds(pid) for name, pid in pids.items()}
                    workers.start(json.loads(started.read_text())["start"])
                    if on_edge:
                        on_edge("start")
                if start_sample is not None and not cpu_end:
                    workers.look()
                if report.exists() and not cpu_end:
                    cpu_end = {name: cpu_seconds(pid) for name, pid in pids.items()}
                    if on_edge:
                        on_edge("end")
                time.sleep(0.05)
        finally:
            stop_process(proc, timeout=10)
    end_sample = ServerSample.take(master_pid)
    if not report.exists():
        raise RuntimeError(f"locust exited with {proc.returncode} and wrote no report; see {log}")
    window = json.loads(report.read_text())
    if cpu_start and cpu_end and window.get("seconds"):
        window["load_side_cpu_util"] = {name: (cpu_end[name] - cpu_start[name]) / window["seconds"] for name in pids}
    window["workers"] = workers.as_dict()
    return window, start_sample, end_sample


class WorkerWatch:
    """The master's worker processes over a measured window, looked at every ``interval`` seconds (/proc).

    ``as_dict()``: ``{"start": epoch s, "interval_s", "live": [[t, count], ...],
    "changes": [{"t", "exited": [pid], "booted": [pid]}, ...]}`` with ``t`` in seconds since the window's start
    (locust's wall clock); an exit followed by a boot is a recycle (or a crash: the server log says which)."""

    def __init__(self, master: int, interval: float = 0.5) -> None:
        self.master, self.interval = master, interval
        self.origin = 0.0
        self.next_at = 0.0
        self.pids: set[int] | None = None
        self.live: list[list[float]] = []
        self.changes: list[dict[str, Any]] = []

    def start(self, origin: float) -> None:
        self.origin = origin
        self.look()

    def look(self) -> None:
        now = time.time()
        if now < self.next_at:
            return
        self.next_at = now + self.interval
        pids = set(child_pids(self.master))
        t = round(now - self.origin, 2)
        if self.pids is not None and pids != self.pids:
            self.changes.append({"t": t, "exited": sorted(self.pids - pids), "booted": sorted(pids - self.pids)})
        self.pids = pids
        self.live.append([t, len(pids)])

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.origin, "interval_s": self.interval, "live": self.live, "changes": self.changes}


class PinnedGunicorn:
    """gunicorn (our gunicorn.conf.py) serving ``app`` on ``core``, e.g. the bare ASGI app for the wrk ceiling."""

    def __init__(
        self,
        *,
        app: str,
        core: str | None,
        workers: int,
        worker_class: str | None,
        log: Path,
        env: dict[str, str | None] | None = None,
    ) -> None:
        self.port = free_port()
        overrides = {"GUNICORN_WORKERS": str(workers), "GUNICORN_LOG_LEVEL": "warning", "SERVING_TEST_ENDPOINTS": None}
        env = serving_env(self.port, {**overrides, **(env or {})})
        argv = [*gunicorn_command(), "-c", "gunicorn.conf.py"]
        if worker_class:
            argv += ["--worker-class", worker_class]
        self.argv = pinned(core, [*argv, app])
        self.env = env
        self.log = log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> PinnedGunicorn:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_http_ok(f"http://127.0.0.1:{self.port}/health", timeout=60, proc=self.proc)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=30)

    @property
    def pid(self) -> int | None:
        """The gunicorn master's pid (taskset execs gunicorn), None before ``__enter__``."""
        return self.proc.pid if self.proc is not None else None
