"""What the access log and the HTTP metrics cost: the same app served with the request layer off, on with plain
log lines and on with JSON lines, measured in the same run, interleaved, server and wrk on separate cores.

``python -m loadtests.monitoring_cost [--rounds 3] [--seconds 8] [--out var/monitoring-cost]`` writes
``report.json`` and ``report.md``. Measures the wrk ceilings of the status JSON (Django + one DB read) and of
``/health`` (answered before Django); the goal (issue 17) is ≤ 5 % of the status-JSON ceiling lost with the layer
on, judged by server CPU per request (/health is reported too). The access log goes
to a file, as a log collector reading stdout would make it. Needs wrk (installed from Debian when missing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from devtools.launch import gunicorn_command, interrupt_on_stop_signals
from devtools.processes import child_pids, free_port
from devtools.stack import Stack, StackConfig, stop_process, wait_http_ok
from loadtests.measure import cpu_seconds, pinned, run_wrk

ROOT = Path(__file__).resolve().parent.parent
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "off": ("loadtests/gunicorn_no_monitoring.conf.py", {"GUNICORN_ACCESS_LOG": "0", "METRICS_PORT": "0"}),
    "plain": ("gunicorn.conf.py", {"GUNICORN_ACCESS_LOG": "1", "LOG_FORMAT": "plain"}),
    "json": ("gunicorn.conf.py", {"GUNICORN_ACCESS_LOG": "1", "LOG_FORMAT": "json"}),
}
GOAL_LOSS = 0.05


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="wrk duration per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--load-core", default="1")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "monitoring-cost")
    return parser.parse_args(argv)


def start_variant(name: str, stack: Stack, args: argparse.Namespace, log_dir: Path) -> tuple[subprocess.Popen, str]:
    """One gunicorn on the stack's database, pinned to the server core; returns (process, base URL)."""
    config, extra = VARIANTS[name]
    port = free_port()
    env = {**stack.env, **extra, "GUNICORN_PORT": str(port), "GUNICORN_WORKERS": str(args.workers)}
    env.update(GUNICORN_LOG_LEVEL="warning", LOG_LEVEL="WARNING")
    if name != "off":
        env["METRICS_PORT"] = str(free_port())
    argv = pinned(args.server_core, [*gunicorn_command(), "-c", config, "coffee_payment.asgi:application"])
    with (log_dir / f"{name}.log").open("ab") as out:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{base}/health", timeout=60, proc=process)
    return process, base


def server_cpu(master: int) -> float:
    """CPU seconds of the master and its live workers: CPU per request is steadier than req/s on a busy machine."""
    return cpu_seconds(master) + sum(cpu_seconds(pid) for pid in child_pids(master))


def measure(args: argparse.Namespace, stack: Stack, status_path: str, log_dir: Path) -> dict[str, Any]:
    """Interleaved rounds (the order reverses every round); every wrk result per variant and path."""
    results: dict[str, dict[str, list[dict[str, Any]]]] = {v: {"status": [], "health": []} for v in VARIANTS}
    with ExitStack() as servers:
        bases, masters = {}, {}
        for name in VARIANTS:
            process, bases[name] = start_variant(name, stack, args, log_dir)
            masters[name] = process.pid
            servers.callback(stop_process, process)
        for round_no in range(args.rounds):
            order = list(VARIANTS) if round_no % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                for path, url in (("status", bases[name] + status_path), ("health", bases[name] + "/health")):
                    cpu_before = server_cpu(masters[name])
                    result = run_wrk(url, seconds=args.seconds, connections=args.connections, core=args.load_core)
                    requests = result.get("rps", 0.0) * args.seconds
                    if requests:
                        result["cpu_us_per_request"] = (server_cpu(masters[name]) - cpu_before) / requests * 1e6
                    results[name][path].append(result)
                    print(
                        f"[monitoring-cost] round {round_no + 1} {name} {path}: {result.get('rps')} req/s", flush=True
                    )
    return results


def summarize(results: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Median req/s per variant and path, and the share lost against ``off``."""
    medians = {
        name: {path: statistics.median(r.get("rps", 0.0) for r in runs) for path, runs in paths.items()}
        for name, paths in results.items()
    }
    cpu = {
        name: {path: statistics.median(r.get("cpu_us_per_request", 0.0) for r in runs) for path, runs in paths.items()}
        for name, paths in results.items()
    }
    loss = {
        name: {path: 1 - medians[name][path] / medians["off"][path] for path in medians["off"] if medians["off"][path]}
        for name in VARIANTS
        if name != "off"
    }
    extra_cpu = {
        name: {path: cpu[name][path] / cpu["off"][path] - 1 for path in cpu["off"] if cpu["off"][path]}
        for name in VARIANTS
        if name != "off"
    }
    # Judged on the status JSON (a real request: Django + one DB read); /health is answered in ~0.05 ms, so the
    # same µs per request show there as a larger share — reported, not judged. Judged by server CPU per request
    # (what throughput on a dedicated core is the inverse of): on a shared machine wrk's req/s swings by tens of
    # percent between identical rounds, CPU time per request much less.
    met = all(per_path.get("status", 1.0) <= GOAL_LOSS for per_path in extra_cpu.values())
    return {
        "median_rps": medians,
        "median_cpu_us_per_request": cpu,
        "loss_vs_off": loss,
        "extra_cpu_vs_off": extra_cpu,
        "goal_loss": GOAL_LOSS,
        "goal_met": met,
    }


def markdown(summary: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "# Access log + metrics cost (wrk ceilings, same run)",
        "",
        f"{args.workers} workers on core {args.server_core}, wrk -c{args.connections} on core {args.load_core}, "
        f"{args.rounds} interleaved rounds of {args.seconds:g} s; medians.",
        "",
        "| variant | status req/s | lost | CPU µs/req | extra CPU | /health req/s | lost | CPU µs/req | extra CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        rps, loss = summary["median_rps"][name], summary["loss_vs_off"].get(name, {})
        cpu, extra = summary["median_cpu_us_per_request"][name], summary["extra_cpu_vs_off"].get(name, {})
        cells = []
        for path in ("status", "health"):
            lost = f"{loss[path]:+.1%}" if path in loss else "—"
            more = f"{extra[path]:+.1%}" if path in extra else "—"
            cells.append(f"{rps[path]:.0f} | {lost} | {cpu[path]:.0f} | {more}")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    verdict = "met" if summary["goal_met"] else "NOT met"
    lines += [
        "",
        f"Goal: ≤ {GOAL_LOSS:.0%} more server CPU per status-JSON request with the layer on — {verdict}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    interrupt_on_stop_signals()  # a TERM stops the stacks this run started
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="monitoring-cost-"))
    started = time.time()
    with Stack(
        StackConfig(mode="prod", var_dir=var_dir, env={"GUNICORN_WORKERS": "1"}, log_to=args.out / "logs")
    ) as stack:
        location = httpx.get(stack.qr_links[0], timeout=30, follow_redirects=False).headers["location"]
        status_path = "/v1/order-status/" + location.split("order_id=", 1)[1]
        results = measure(args, stack, status_path, args.out / "logs")
    summary = summarize(results)
    data = {"parameters": {k: str(v) for k, v in vars(args).items()}, "elapsed_s": time.time() - started}
    data.update(summary=summary, results=results)
    (args.out / "report.json").write_text(json.dumps(data, indent=1))
    (args.out / "report.md").write_text(markdown(summary, args))
    print(markdown(summary, args))
    return 0 if summary["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
