"""What a worker costs, preload on vs off: ``python -m loadtests.worker_cost [--out reports/worker-cost]``.

For ``GUNICORN_PRELOAD`` 1 and 0, one stack (sandbox + gunicorn, SQLite, ``--workers`` workers) is warmed up with
customer flows (QR scan → status JSON → Pay), then each worker is read from ``/proc/<pid>/smaps_rollup``: RSS,
PSS (shared pages divided among the processes sharing them) and USS (Private_Clean + Private_Dirty: what the
worker alone holds, freed when it exits). Boot CPU is the worker's own log line ("boot took N s CPU", its
``time.process_time()`` when it starts accepting). Then, with one worker and a low ``max_requests``, a client
sends requests back to back on fresh connections and records the longest wait across recycles: the gap that a
one-worker server cannot avoid (the replacement is forked only after the old worker exited). Writes
``worker-cost.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from devtools.launch import interrupt_on_stop_signals  # noqa: E402
from devtools.processes import child_pids, running_gunicorn  # noqa: E402
from devtools.stack import Stack, StackConfig  # noqa: E402

_BOOT = re.compile(r"Worker (\d+) accepting: boot took ([\d.]+)s CPU")


def smaps_rollup(pid: int) -> dict[str, float] | None:
    """RSS, PSS and USS of ``pid`` in MiB from /proc/<pid>/smaps_rollup; None for a gone process."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    kb = {name: int(value) for name, value in re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)}
    return {
        "rss_mib": kb.get("Rss", 0) / 1024,
        "pss_mib": kb.get("Pss", 0) / 1024,
        "uss_mib": (kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)) / 1024,
    }


def boot_cpu(logs: str) -> list[float]:
    """Boot CPU seconds of every worker that logged it."""
    return [float(seconds) for _pid, seconds in _BOOT.findall(logs)]


def fresh_qr_path(link: str) -> str:
    """The path of a demo QR ``link`` with a new machine ``uuid`` (a new order)."""
    parts = urlsplit(link)
    params = dict(parse_qsl(parts.query))
    params["uuid"] = "wc" + secrets.token_hex(10)
    return f"{parts.path}?{urlencode(params)}"


def _warm_up(stack: Stack, flows: int) -> None:
    for n in range(flows):
        with httpx.Client(base_url=stack.base_url, timeout=20) as app:  # fresh connection: spread over workers
            response = app.get(fresh_qr_path(stack.qr_links[n % len(stack.qr_links)]))
            assert response.status_code == 302, response.text[:200]
            order_id = response.headers["location"].split("order_id=", 1)[1]
            assert app.get(f"/v1/order-status/{order_id}").status_code == 200
            assert app.post("/v1/initiate-payment", json={"order_id": order_id}).status_code == 200


def measure_memory(preload: bool, *, workers: int, flows: int) -> dict[str, Any]:
    """Per-worker memory and boot CPU of a warmed-up stack with ``GUNICORN_PRELOAD`` = ``preload``."""
    env = {"GUNICORN_PRELOAD": "1" if preload else "0", "GUNICORN_WORKERS": str(workers)}
    with tempfile.TemporaryDirectory(prefix="worker-cost-") as var:
        config = StackConfig(mode="prod", var_dir=Path(var), env=env, log_to=Path(var) / "logs")
        with Stack(config) as stack:
            _warm_up(stack, flows)
            time.sleep(0.5)
            memory = {str(pid): smaps_rollup(pid) for pid in child_pids(stack.server.pid)}
            master = smaps_rollup(stack.server.pid)
            logs = (Path(var) / "logs" / "server.log").read_text(errors="replace")
    per_worker = [m for m in memory.values() if m]
    return {
        "preload": preload,
        "workers": memory,
        "master": master,
        "boot_cpu_s": boot_cpu(logs),
        "median": {key: statistics.median(m[key] for m in per_worker) for key in ("rss_mib", "pss_mib", "uss_mib")},
    }


def measure_single_worker_gap(preload: bool, *, seconds: float, max_requests: int) -> dict[str, Any]:
    """Longest request latency across recycles of a lone worker (requests back to back, new connection each)."""
    env = {
        "GUNICORN_PRELOAD": "1" if preload else "0",
        "GUNICORN_MAX_REQUESTS": str(max_requests),
        "GUNICORN_MAX_REQUESTS_JITTER": "0",
    }
    latencies: list[float] = []
    errors = 0
    with running_gunicorn(workers=1, env=env) as server:
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            started = time.monotonic()
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            try:
                connection.request("GET", "/livez")
                ok = connection.getresponse().status == 200
            except OSError:
                ok = False
            finally:
                connection.close()
            errors += not ok
            latencies.append(time.monotonic() - started)
        recycles = server.logs().count("reached, recycling")
    latencies.sort()
    return {
        "preload": preload,
        "requests": len(latencies),
        "errors": errors,
        "recycles": recycles,
        "max_gap_s": latencies[-1],
        "p50_ms": latencies[len(latencies) // 2] * 1000,
    }


def render(result: dict[str, Any]) -> str:
    """A Markdown table of the result."""
    lines = [
        "| preload | boot CPU per worker (median) | RSS | PSS | USS | 1-worker recycle: longest wait, errors |",
        "|---|---|---|---|---|---|",
    ]
    for memory, gap in zip(result["memory"], result["gap"], strict=True):
        med = memory["median"]
        lines.append(
            f"| {'on' if memory['preload'] else 'off'} | {statistics.median(memory['boot_cpu_s']):.3f} s "
            f"| {med['rss_mib']:.1f} MiB | {med['pss_mib']:.1f} MiB | {med['uss_mib']:.1f} MiB "
            f"| {gap['max_gap_s'] * 1000:.0f} ms over {gap['recycles']} recycles, {gap['errors']} errors |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    interrupt_on_stop_signals()  # a TERM stops the stacks this run started
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "worker-cost")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--flows", type=int, default=40, help="customer flows of warm-up before reading memory")
    parser.add_argument("--gap-seconds", type=float, default=10.0)
    parser.add_argument("--gap-max-requests", type=int, default=100)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"memory": [], "gap": []}
    for preload in (True, False):
        result["memory"].append(measure_memory(preload, workers=args.workers, flows=args.flows))
        result["gap"].append(
            measure_single_worker_gap(preload, seconds=args.gap_seconds, max_requests=args.gap_max_requests)
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "worker-cost.json").write_text(json.dumps(result, indent=2))
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
