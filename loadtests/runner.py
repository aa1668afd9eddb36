"""Compare serving targets under the same locust profile: ``python -m loadtests.runner --out reports/load``.

Every target (runserver with DEBUG=1 and with DEBUG=0; gunicorn + our Uvicorn worker; gunicorn's native asgi
worker; the Uvicorn worker again with ``max_requests``) is started once, each on a fresh PostgreSQL database with
the demo data and its own sandbox in auto-pay mode with ``--latency-ms`` per provider/Tmetr call; servers are
pinned to ``--server-core``, locust,
wrk and the sandboxes to ``--load-core``. A bare ASGI app runs under each gunicorn worker class. Then
``--rounds`` interleaved rounds (the order reverses each round, so a drift of this shared machine's speed hits
every target alike): per target, locust warms up and measures ``--duration`` seconds, the server is sampled from
/proc (RSS per process, CPU of master + workers) at the window's start and end, wrk measures the /health and
status-JSON ceilings (the server's CPU sampled per route), and right after, the bare app's and (after prod) the
Django floor's (``loadtests/floor_app.py`` on prod's database). runserver and prod also get a second window at
``--second-poll-interval``. Medians over the rounds are reported; the goals take the worst round. Finally every server
is stopped with TERM (time and exit code recorded). Writes report.json, report.md and report.html to ``--out``
and a summary to stdout; with ``--baseline`` exits 3 when a same-run ratio fell more than ``--tolerance`` below
the baseline's; 2 when a prerequisite is missing or a target failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from coffee_payment.orders.polling import STATUS_POLL_INTERVAL_MS  # noqa: E402
from devtools.launch import interrupt_on_stop_signals  # noqa: E402
from devtools.pg import PG_ADMIN_URL, pg_available, temporary_database  # noqa: E402
from devtools.processes import free_port  # noqa: E402
from devtools.stack import ONE_CLIENT_ENV, Stack, StackConfig, local_secret_key  # noqa: E402
from loadtests import compare, prom, report  # noqa: E402
from loadtests.measure import (  # noqa: E402
    LocustProfile,
    PinnedGunicorn,
    ServerSample,
    ensure_wrk,
    repin,
    run_locust,
    run_wrk,
    wait_idle,
)
from loadtests.worker_cost import boot_cpu, smaps_rollup  # noqa: E402

# name → (Stack mode, gunicorn worker class for the bare-app ceiling; None = no bare comparison)
TARGETS: dict[str, tuple[str, str | None]] = {
    "runserver": ("dev", None),
    "runserver-nodebug": ("dev", None),  # runserver with DEBUG=0: the reference without debug overhead
    "uvicorn-worker": ("prod", "coffee_payment.serving.worker.ServingUvicornWorker"),
    "gunicorn-asgi": ("gunicorn-asgi", "asgi"),
}
RECYCLE_TARGET = "uvicorn-worker"
FLOOR_TARGET = "uvicorn-worker"  # the Django floor reads this target's database and order, under its worker class
FLOOR_APP = "loadtests.floor_app:application"
# Measured again under --second-poll-interval (the old aggressive profile), reported as "<target>@poll<s>s".
SECOND_PROFILE_TARGETS = ("runserver", "uvicorn-worker")  # the reference and prod: the default run stays short
DEFAULT_CPU_BASELINE = ROOT / "loadtests" / "baseline.json"


def profile_label(poll_interval: float) -> str:
    """The name of a locust profile by its poll interval: ``0.25`` → ``poll0.25s``."""
    return f"poll{poll_interval:g}s"


PACKAGES = (
    "django",
    "gunicorn",
    "uvicorn",
    "uvicorn-worker",
    "uvloop",
    "httptools",
    "psycopg",
    "psycopg-pool",
    "httpx",
    "locust",
)
PROFILE_OPTIONS = (
    "think_time",
    "probe_interval",
    "customer_weight",
    "probe_weight",
    "storm_weight",
    "flow_timeout",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The runner's options (``invoke load`` passes its arguments through); exits 2 with a reason on bad ones."""
    parser = argparse.ArgumentParser(prog="loadtests.runner", description=__doc__.split("\n\n")[0])
    _add_run_options(parser.add_argument)
    _add_server_options(parser.add_argument)
    _add_baseline_options(parser.add_argument)
    _add_profile_options(parser.add_argument_group("locust profile (loadtests/locustfile.py options)").add_argument)
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.env):
        parser.error("--env takes KEY=VALUE")
    unknown = [t for t in args.targets.split(",") if t not in TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(TARGETS)}")
    return args


def _add_run_options(add: Callable[..., Any]) -> None:
    """What is run and for how long: output, targets, users, warm-ups, windows, rounds, wrk."""
    add("--out", type=Path, default=ROOT / "reports" / "load", help="output directory (default reports/load)")
    add("--targets", default=",".join(TARGETS), help=f"comma-separated, from {', '.join(TARGETS)}")
    add("--workers", type=int, default=3, help="gunicorn workers (3 = GUNICORN_WORKERS=auto on one core)")
    add("--users", type=int, default=100, help="locust users (all spawned during the warm-up)")
    add("--warmup", type=float, default=4.0, help="seconds of load before each measured window")
    add(
        "--runserver-warmup",
        type=float,
        default=12.0,
        help="warm-up of the runserver targets at --poll-interval: a flow there takes longer than --warmup, and a "
        "window that ends before the first flows do counts no flow",
    )
    add("--duration", type=float, default=10.0, help="measured seconds per target and round")
    add("--rounds", type=int, default=2, help="interleaved rounds (medians are reported; order reverses each round)")
    add("--latency-ms", type=float, default=100.0, help="sandbox latency per provider/Tmetr call")
    add("--wrk-seconds", type=float, default=3.0, help="wrk duration per ceiling")
    add("--wrk-connections", type=int, default=32)
    add(
        "--wrk-status",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also wrk the status JSON of one order (the Django request path's ceiling)",
    )


def _add_server_options(add: Callable[..., Any]) -> None:
    """How the servers run: cores, recycling, runserver's DEBUG, graceful timeout, app environment."""
    add("--server-core", default="1", help="CPU list for the server (taskset -c)")
    add("--load-core", default="0", help="CPU list for locust, wrk and the sandbox")
    add("--max-requests", type=int, default=1000, help="max_requests of the recycling run (0 = skip that run)")
    add(
        "--runserver-debug",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="runserver with DEBUG=1, as `invoke serve` runs it (default)",
    )
    add(
        "--graceful-timeout",
        type=int,
        default=10,
        help="GUNICORN_GRACEFUL_TIMEOUT of the gunicorn targets: bounds a stop that does not drain (seconds)",
    )
    add(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="app environment for every target, repeatable (e.g. DB_POOL_MAX_SIZE=16)",
    )


def _add_baseline_options(add: Callable[..., Any]) -> None:
    """What the run is compared with: a previous report's ratios and CPU per request."""
    add("--baseline", type=Path, help="a previous report.json: exit 3 when a ratio fell below it")
    add("--tolerance", type=float, default=0.25, help="allowed relative drop of a ratio vs the baseline")
    add(
        "--cpu-baseline",
        type=Path,
        default=DEFAULT_CPU_BASELINE,
        help="a report.json whose prod CPU ms per request the CPU goal halves (default loadtests/baseline.json)",
    )


def _add_profile_options(add: Callable[..., Any]) -> None:
    """The locust profile's options (loadtests/locustfile.py): poll intervals, think time, weights, flow timeout."""
    add(
        "--poll-interval",
        type=float,
        default=STATUS_POLL_INTERVAL_MS / 1000,
        help="seconds between a customer's status polls (default: the status page's own interval, "
        "coffee_payment/orders/polling.py)",
    )
    add(
        "--second-poll-interval",
        type=float,
        default=0.25,
        help="a second locust window per round at this poll interval for runserver (DEBUG as --runserver-debug) "
        "and prod, "
        "reported as <target>@poll<s>s (0 = skip; 0.25 = the earlier, aggressive profile of the baseline)",
    )
    add("--think-time", type=float, default=0.5)
    add("--probe-interval", type=float, default=0.2)
    add("--customer-weight", type=int, default=10)
    add("--probe-weight", type=int, default=1)
    add("--storm-weight", type=int, default=0)
    add("--flow-timeout", type=float, default=30.0)


def machine_facts() -> dict[str, Any]:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    )
    return {
        "cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
        "hostname": platform.node(),
    }


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True) if ensure_wrk() else None
    found["wrk"] = (wrk.stdout or wrk.stderr).split(" [")[0].removeprefix("wrk ").strip() if wrk else None
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
            found["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # noqa: BLE001 - a fact for the report, never fatal
        found["postgresql"] = None
    return found


def _duplicate_makes(sandbox_url: str) -> dict[str, int]:
    makes = httpx.get(f"{sandbox_url}/_sandbox/tmetr/makes", timeout=30).json()
    orders = [m.get("orderUuid") for m in makes]
    return {"makes": len(orders), "orders": len(set(orders)), "duplicates": len(orders) - len(set(orders))}


def _fresh_order_status_url(stack: Stack) -> str:
    """The status JSON URL of a new ``created`` order (no provider call on that path): Django + one DB read."""
    response = httpx.get(stack.qr_links[0], timeout=30, follow_redirects=False)
    order_id = response.headers["location"].split("order_id=", 1)[1]
    return f"{stack.base_url}/v1/order-status/{order_id}"


class TargetRun:
    """One target kept running for the whole suite (own database, sandbox and server), measured in rounds."""

    def __init__(self, label: str, name: str, args: argparse.Namespace, env_extra: dict[str, str] | None = None):
        self.label, self.name, self.args = label, name, args
        self.mode, worker_class = TARGETS[name]
        self.workdir = args.out / "work" / label
        self.logs = args.out / "logs" / label
        self.stack: Stack | None = None
        self.db_url = ""
        self.status_url = ""
        self.metrics_url = ""
        self.result: dict[str, Any] = {
            "target": name,
            "label": label,
            "mode": self.mode,
            "env": dict(env_extra or {}),
            "worker_class_for_bare": worker_class,
            "rounds": [],
        }
        self.env_extra = dict(env_extra or {})

    def start(self, databases: ExitStack) -> None:
        """Fresh database, migrate + demo data, sandbox (auto-pay) and server pinned; boot sample."""
        args = self.args
        self.workdir.mkdir(parents=True, exist_ok=True)
        db_url = self.db_url = databases.enter_context(temporary_database("coffee_load"))
        env = {
            "DATABASE_URL": db_url,
            "GUNICORN_WORKERS": str(args.workers),
            "GUNICORN_LOG_LEVEL": "warning",
            "GUNICORN_GRACEFUL_TIMEOUT": str(args.graceful_timeout),
            "LOG_LEVEL": "WARNING",
            **ONE_CLIENT_ENV,
            **dict(item.split("=", 1) for item in args.env),
            **self.env_extra,
        }
        if self.mode != "dev":  # the gunicorn targets' metrics listener, on loopback only
            port = free_port()
            env.update(METRICS_PORT=str(port), METRICS_BIND_HOST="127.0.0.1")
            self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        if self.mode == "dev" and (self.name == "runserver-nodebug" or not args.runserver_debug):
            env.update(DEBUG="0", SECRET_KEY=local_secret_key(self.workdir / "var")[0])
        self.stack = Stack(
            StackConfig(
                mode=self.mode,
                var_dir=self.workdir / "var",
                env=env,
                auto_pay=True,
                latency_ms=args.latency_ms,
                taskset=args.server_core,
                log_to=self.logs,
            )
        )
        started = time.monotonic()
        self.result["loadavg_before"] = os.getloadavg()
        self.stack.start()
        self.result["boot_s"] = time.monotonic() - started
        repin(self.stack.sandbox.pid, args.load_core)  # the sandbox stands for the outside world: off the server core
        self.result["samples"] = {"boot": ServerSample.take(self.stack.server.pid).as_dict()}
        if args.wrk_status:
            self.status_url = _fresh_order_status_url(self.stack)

    def _window(self, round_no: int, poll_interval: float, suffix: str = "") -> dict[str, Any]:
        """One locust window (warm-up, then measured) with ``poll_interval``: its report, /proc samples, metrics
        and gunicorn's signals; ``suffix`` names the locust HTML report of a second profile."""
        args, stack = self.args, self.stack
        assert stack is not None
        options = {opt: getattr(args, opt) for opt in PROFILE_OPTIONS} | {"poll_interval": poll_interval}
        slow = self.mode == "dev" and poll_interval == args.poll_interval
        profile = LocustProfile(
            users=args.users,
            spawn_rate=args.users,
            warmup_s=max(args.warmup, args.runserver_warmup) if slow else args.warmup,
            measure_s=args.duration,
            extra=[f"--{opt.replace('_', '-')}={value}" for opt, value in options.items()],
        )
        record: dict[str, Any] = {"round": round_no, "loadavg_before": os.getloadavg(), "poll_interval": poll_interval}
        server_log = self.logs / "server.log"
        offsets = [_size(server_log)]
        locust_html = self.logs / f"locust-round{round_no}{suffix}.html"
        scrapes: dict[str, dict[str, Any]] = {}
        window, first, last = run_locust(
            stack.base_url,
            profile,
            core=args.load_core,
            workdir=self.workdir,
            master_pid=stack.server.pid,
            log=self.logs / "locust.log",
            watch={"sandbox": stack.sandbox.pid},
            html=locust_html,
            on_edge=(lambda edge: scrapes.update({edge: prom.scrape(self.metrics_url)})) if self.metrics_url else None,
        )
        offsets.append(_size(server_log))
        record["locust"] = window
        if self.metrics_url:
            missing = {"error": "no scrape at this edge of the window"}
            record["metrics"] = prom.window(scrapes.get("start", missing), scrapes.get("end", missing))
        if locust_html.exists():
            record["locust_html"] = str(locust_html.relative_to(args.out))
        window_start = (window.get("workers") or {}).get("start")
        if window_start:
            record["signals"] = signals_in(_log_slice(server_log, offsets[0], offsets[1]), window_start)
        record["samples"] = {"start": first.as_dict() if first else None, "end": last.as_dict()}
        record["memory_end"] = {str(pid): smaps_rollup(pid) for pid in last.workers}
        if first is not None:
            record["cpu_s"] = last.cpu_s - first.cpu_s
        # Requests still queued from the window (runserver's backlog, notifications, make commands) would
        # otherwise be counted against the ceiling or the next window.
        record["settle_s"] = wait_idle(stack.server.pid)
        return record

    def measure(self, round_no: int) -> dict[str, Any]:
        """One round: the locust window at ``--poll-interval``, wrk ceilings (CPU sampled per route), then the
        second profile's window (``--second-poll-interval``) for SECOND_PROFILE_TARGETS."""
        args, stack = self.args, self.stack
        assert stack is not None
        server_log = self.logs / "server.log"
        start = _size(server_log)
        record = self._window(round_no, args.poll_interval)
        middle = _size(server_log)
        record["wrk_health"] = wrk(args, f"{stack.base_url}/health", stack.server.pid)
        if self.status_url:
            record["wrk_status"] = wrk(args, self.status_url, stack.server.pid)
        end = _size(server_log)
        # The server logs at info for the recycling target only: its recycles and boots are counted from it.
        record["recycles"] = {
            "window": _log_slice(server_log, start, middle).count("reached, recycling"),
            "ceilings": _log_slice(server_log, middle, end).count("reached, recycling"),
        }
        record["boot_cpu_s"] = boot_cpu(_log_slice(server_log, start, end))
        if args.second_poll_interval and self.label in SECOND_PROFILE_TARGETS:
            second = profile_label(args.second_poll_interval)
            record["profiles"] = {second: self._window(round_no, args.second_poll_interval, f"-{second}")}
        self.result["rounds"].append(record)
        return record

    def stop(self) -> None:
        if self.stack is None or self.stack.server is None:
            return
        try:
            self.result["dispense"] = _duplicate_makes(self.stack.sandbox_url)
        except (httpx.HTTPError, ValueError) as exc:
            self.result["dispense"] = {"error": str(exc)}
        stopping = time.monotonic()
        self.result["stop_exit_code"] = self.stack.stop()
        self.result["stop_s"] = time.monotonic() - stopping
        self.stack = None

    def fail(self, exc: BaseException) -> None:
        detail = getattr(exc, "stderr", None) or ""
        message = f"{type(exc).__name__}: {exc}\n{detail[-2000:] if isinstance(detail, str) else ''}".strip()
        print(f"[load] {self.label}: FAILED: {message}", file=sys.stderr, flush=True)
        self.result["error"] = message
        if self.stack is not None:
            self.stack.stop()
            self.stack = None


FAILURES = (RuntimeError, OSError, subprocess.SubprocessError, httpx.HTTPError, KeyError)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


SIGNAL_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4})\].*Handling signal: (\w+)", re.M)


def signals_in(log: str, origin: float) -> list[dict[str, Any]]:
    """The signals gunicorn's master logged (``Handling signal: ttin``, at info level) as ``{"t", "signal"}``, ``t``
    in seconds since ``origin`` (epoch seconds; the log has whole seconds)."""
    return [
        {"t": datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S %z").timestamp() - origin, "signal": name}
        for stamp, name in SIGNAL_LINE.findall(log)
    ]


def _log_slice(path: Path, start: int, end: int) -> str:
    """The bytes ``start..end`` of a log file, decoded (empty when the file is missing)."""
    try:
        with path.open("rb") as log:
            log.seek(start)
            return log.read(max(0, end - start)).decode(errors="replace")
    except OSError:
        return ""


def wrk(args: argparse.Namespace, url: str, server_pid: int | None) -> dict[str, Any]:
    """One wrk ceiling with the suite's duration, connections and load core; the server tree's CPU sampled."""
    return run_wrk(
        url, seconds=args.wrk_seconds, connections=args.wrk_connections, core=args.load_core, server_pid=server_pid
    )


def floor_server(run: TargetRun, args: argparse.Namespace) -> PinnedGunicorn:
    """The Django floor (``loadtests/floor_app.py``) on ``run``'s database, with the same workers, core, worker
    class and app environment (``--env``, e.g. the pool size) as the product (a context manager)."""
    return PinnedGunicorn(
        app=FLOOR_APP,
        core=args.server_core,
        workers=args.workers,
        worker_class=None,  # gunicorn.conf.py's: ServingUvicornWorker
        log=args.out / "logs" / "floor.log",
        env={
            **dict(item.split("=", 1) for item in args.env),
            "DATABASE_URL": run.db_url,
            "DJANGO_SETTINGS_MODULE": "loadtests.floor_settings",
        },
    )


def bare_server(worker_class: str, args: argparse.Namespace) -> PinnedGunicorn:
    """The bare ASGI app under ``worker_class`` with the same workers, core and settings (a context manager)."""
    custom = None if worker_class.endswith("ServingUvicornWorker") else worker_class  # conf default otherwise
    return PinnedGunicorn(
        app="loadtests.bare_app:app",
        core=args.server_core,
        workers=args.workers,
        worker_class=custom,
        log=args.out / "logs" / f"bare-{worker_class.rsplit('.', 1)[-1]}.log",
    )


def _plan(args: argparse.Namespace) -> list[TargetRun]:
    """One run per ``--targets`` entry, plus the recycling run (RECYCLE_TARGET with max_requests) when asked."""
    targets = args.targets.split(",")
    plan = [TargetRun(name, name, args) for name in targets]
    if args.max_requests and RECYCLE_TARGET in targets:
        plan.append(
            TargetRun(
                f"{RECYCLE_TARGET}+max_requests={args.max_requests}",
                RECYCLE_TARGET,
                args,
                # The design's jitter is a tenth of the limit (1000 + 0..100); recycles are staggered by the worker.
                {
                    "GUNICORN_MAX_REQUESTS": str(args.max_requests),
                    "GUNICORN_MAX_REQUESTS_JITTER": str(args.max_requests // 10),
                    "GUNICORN_LOG_LEVEL": "info",  # recycles and boot CPU are counted from the log
                },
            )
        )
    return plan


# worker class (or FLOOR_KEY) -> (URL, server pid, wrk results by round)
_Bare = dict[str, tuple[str, int | None, list[dict[str, Any]]]]
FLOOR_KEY = "floor"


def _start_bare_servers(plan: list[TargetRun], args: argparse.Namespace, resources: ExitStack) -> _Bare:
    """One bare ASGI app per worker class of a started target, and the Django floor on FLOOR_TARGET's database
    (when its status JSON is measured); stopped when ``resources`` closes."""
    bare: _Bare = {}
    for run in plan:
        worker_class = run.result["worker_class_for_bare"]
        if worker_class and worker_class not in bare and "error" not in run.result:
            server = resources.enter_context(bare_server(worker_class, args))
            bare[worker_class] = (f"http://127.0.0.1:{server.port}/health", server.pid, [])
        if run.label == FLOOR_TARGET and run.status_url and "error" not in run.result:
            try:
                floor = resources.enter_context(floor_server(run, args))
            except FAILURES as exc:
                print(f"[load] Django floor: FAILED to start: {exc}", file=sys.stderr, flush=True)
                continue
            path = run.status_url.split("/v1/", 1)[1]
            bare[FLOOR_KEY] = (f"http://127.0.0.1:{floor.port}/v1/{path}", floor.pid, [])
    return bare


def _measure_round(round_no: int, plan: list[TargetRun], bare: _Bare, args: argparse.Namespace) -> None:
    """Measure every live target once (in reverse order on even rounds), each followed by its bare app's wrk."""
    for run in plan if round_no % 2 else list(reversed(plan)):
        if "error" in run.result:
            continue
        try:
            run.measure(round_no)
        except FAILURES as exc:
            run.fail(exc)
            continue
        print(f"[load] round {round_no} {run.label}: {report.one_line(run.result['rounds'][-1])}", flush=True)
        if run.label != run.name:
            continue
        # Right after the target's own wrk, so the two see the same machine: its bare app, and the floor.
        for key in (run.result["worker_class_for_bare"], FLOOR_KEY if run.label == FLOOR_TARGET else None):
            if key in bare:
                url, pid, results = bare[key]
                if len(results) < round_no:
                    results.append(wrk(args, url, pid))


def profile_runs(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The second profile's windows of one target as runs of their own, ``{"<target>@<profile>": run}`` (no wrk
    ceilings: those belong to the target's own rounds)."""
    found: dict[str, dict[str, Any]] = {}
    for rd in result.get("rounds") or []:
        for label, window in (rd.get("profiles") or {}).items():
            name = f"{result['target']}{compare.PROFILE_SEP}{label}"
            run = found.setdefault(
                name,
                {
                    "target": result["target"],
                    "label": name,
                    "mode": result.get("mode"),
                    "profile": label,
                    "samples": result.get("samples"),
                    "worker_class_for_bare": None,
                    "rounds": [],
                },
            )
            run["rounds"].append(window)
    return found


def cpu_baseline(path: Path | None) -> dict[str, Any] | None:
    """The committed baseline's prod CPU ms per customer request, its profile (``poll<s>s``, from its
    ``parameters.poll_interval``) and the ``cpu_model`` it was measured on, or None when there is no such file or
    figure."""
    if path is None or not path.exists():
        return None
    data = json.loads(path.read_text())
    figure = ((data.get("derived") or {}).get(compare.PROD) or {}).get("cpu_ms_per_request")
    if figure is None:
        return None
    poll = (data.get("parameters") or {}).get("poll_interval")
    return {
        "file": str(path),
        "cpu_ms_per_request": figure,
        "profile": profile_label(poll) if poll else None,
        "cpu_model": (data.get("machine") or {}).get("cpu_model"),
    }


def run_suite(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """Start every target, then measure them in interleaved rounds (the order reverses each round, so a drift of
    the machine's speed hits every target alike), then stop them. Fills ``data['targets'|'recycling'|'bare']``."""
    plan = _plan(args)
    with ExitStack() as resources:
        for run in plan:
            print(f"[load] {run.label}: starting …", flush=True)
            try:
                run.start(resources)
            except FAILURES as exc:
                run.fail(exc)
        resources.callback(lambda: [run.stop() for run in plan])
        bare = _start_bare_servers(plan, args, resources)
        for round_no in range(1, args.rounds + 1):
            _measure_round(round_no, plan, bare, args)
    # Leaving the ExitStack stopped the bare servers, then every target (the callback above).
    for run in plan:
        if run.name == RECYCLE_TARGET and run.label != run.name:
            data["recycling"] = run.result
        else:
            data["targets"][run.name] = run.result
    for run in plan:
        data["targets"].update(profile_runs(run.result))
    floor = bare.pop(FLOOR_KEY, None)
    data["bare"] = {
        worker_class: {"rounds": results, **compare.median_wrk(results)}
        for worker_class, (_, _, results) in bare.items()
    }
    if floor is not None:
        data["floor"] = {"app": FLOOR_APP, "rounds": floor[2], **compare.median_wrk(floor[2])}


def main(argv: list[str] | None = None) -> int:
    interrupt_on_stop_signals()  # a TERM stops every server started so far (the ExitStack in run_suite)
    args = parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    if not pg_available():
        print(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (start it: nox -s load does)", file=sys.stderr)
        return 2
    began = time.time()
    data: dict[str, Any] = {
        "schema": 1,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(began)),
        "command": " ".join(["python -m loadtests.runner", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_facts(),
        "versions": versions(),
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "targets": {},
        "bare": {},
    }
    run_suite(args, data)
    data["machine"]["loadavg_end"] = os.getloadavg()
    data["elapsed_s"] = time.time() - began
    baseline_cpu = cpu_baseline(args.cpu_baseline)
    if baseline_cpu:
        if baseline_cpu["profile"] == profile_label(args.poll_interval):
            baseline_cpu["profile"] = None  # the headline run has the baseline's profile
        data["cpu_baseline"] = baseline_cpu
    data["derived"] = compare.derive(data)
    data["ratios"] = compare.ratios(data)
    data["goals"] = compare.goals(data)
    runs = [*data["targets"].values(), *([data["recycling"]] if "recycling" in data else [])]
    code = 2 if any("error" in run for run in runs) else 0
    if args.baseline:
        baseline = json.loads(args.baseline.read_text())
        data["baseline_check"] = compare.check_baseline(data["ratios"], baseline.get("ratios", {}), args.tolerance)
        data["baseline_check"]["baseline"] = str(args.baseline)
        if data["baseline_check"]["regressions"] and not code:
            code = 3
    (args.out / "report.json").write_text(json.dumps(data, indent=1, ensure_ascii=False))
    (args.out / "report.md").write_text(report.markdown(data))
    (args.out / "report.html").write_text(report.html(data))
    print(report.summary(data), flush=True)
    print(f"[load] wrote {args.out}/report.json, report.md, report.html in {data['elapsed_s']:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
