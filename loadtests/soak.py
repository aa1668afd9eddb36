"""Memory under recycling over minutes: ``python -m loadtests.soak [--minutes 5] [--max-requests 1000]``.

One stack (sandbox + gunicorn on a fresh PostgreSQL database, ``--workers`` workers, ``GUNICORN_MAX_REQUESTS``
with a tenth as jitter) serves ``--clients`` keep-alive clients doing customer steps (QR scan, status JSON,
probes) for ``--minutes``. Every ``--every`` seconds it samples each worker's RSS/PSS/USS and the master's
(``/proc/<pid>/smaps_rollup``); the pod's memory is the master's RSS plus the workers' USS. Flat means: the
median worker RSS and the pod total of each sample (samples with every worker live, for the total) within ±5 %
of their first sample after the warm-up. Writes ``soak.json`` and prints the series.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from devtools.launch import interrupt_on_stop_signals  # noqa: E402
from devtools.pg import temporary_database  # noqa: E402
from devtools.processes import child_pids  # noqa: E402
from devtools.stack import Stack, StackConfig  # noqa: E402
from loadtests.worker_cost import fresh_qr_path, smaps_rollup  # noqa: E402


def _client(stack: Stack, stop_at: float, counts: dict[str, int], lock: threading.Lock, n: int) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=30) as app:
        while time.monotonic() < stop_at:
            try:
                scanned = app.get(fresh_qr_path(stack.qr_links[n % len(stack.qr_links)]))
                order_id = scanned.headers["location"].split("order_id=", 1)[1]
                statuses = [app.get(f"/v1/order-status/{order_id}").status_code for _ in range(5)]
                statuses.append(app.get("/livez").status_code)
                ok = scanned.status_code == 302 and all(code == 200 for code in statuses)
            except (httpx.HTTPError, KeyError):
                ok = False
            with lock:
                counts["ok" if ok else "failed"] += 1


def sample(master: int) -> dict[str, Any]:
    """Memory of the master and of every live worker, and the pod total (master RSS + workers' USS), MiB."""
    workers = {str(pid): smaps_rollup(pid) for pid in child_pids(master)}
    live = [m for m in workers.values() if m]
    master_memory = smaps_rollup(master) or {"rss_mib": 0.0}
    return {
        "at": time.monotonic(),
        "workers": workers,
        "median_worker_rss_mib": statistics.median(m["rss_mib"] for m in live) if live else None,
        "pod_mib": master_memory["rss_mib"] + sum(m["uss_mib"] for m in live),
    }


def flat(series: list[float], tolerance: float = 0.05) -> bool:
    """Every value within ±``tolerance`` of the first."""
    return bool(series) and all(abs(v - series[0]) <= tolerance * series[0] for v in series)


def main(argv: list[str] | None = None) -> int:
    interrupt_on_stop_signals()  # a TERM stops the stack this run started
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "soak")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before the first counted sample")
    parser.add_argument("--every", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-requests", type=int, default=1000)
    args = parser.parse_args(argv)
    env = {
        "GUNICORN_WORKERS": str(args.workers),
        "GUNICORN_MAX_REQUESTS": str(args.max_requests),
        "GUNICORN_MAX_REQUESTS_JITTER": str(args.max_requests // 10),
    }
    counts = {"ok": 0, "failed": 0}
    samples: list[dict[str, Any]] = []
    with temporary_database("coffee_soak") as url, tempfile.TemporaryDirectory(prefix="soak-") as var:
        env["DATABASE_URL"] = url
        config = StackConfig(mode="prod", var_dir=Path(var), env=env, auto_pay=True, log_to=Path(var) / "logs")
        with Stack(config) as stack:
            lock = threading.Lock()
            started = time.monotonic()
            stop_at = started + args.warmup + args.minutes * 60
            threads = [
                threading.Thread(target=_client, args=(stack, stop_at, counts, lock, n)) for n in range(args.clients)
            ]
            for thread in threads:
                thread.start()
            time.sleep(args.warmup)
            while time.monotonic() < stop_at:
                samples.append(sample(stack.server.pid))
                time.sleep(args.every)
            for thread in threads:
                thread.join(timeout=60)
            recycles = (Path(var) / "logs" / "server.log").read_text(errors="replace").count("reached, recycling")
    rss = [s["median_worker_rss_mib"] for s in samples if s["median_worker_rss_mib"]]
    # A sample taken while a worker is being replaced counts one worker fewer: the pod total compares full samples.
    pod = [s["pod_mib"] for s in samples if sum(1 for m in s["workers"].values() if m) == args.workers]
    result = {
        "parameters": vars(args) | {"out": str(args.out)},
        "client_rounds": counts,
        "recycles": recycles,
        "samples": samples,
        "worker_rss_flat": flat(rss),
        "pod_flat": flat(pod),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=2))
    print(f"{counts} client rounds, {recycles} recycles")
    print("median worker RSS MiB:", " ".join(f"{v:.1f}" for v in rss), "flat ±5 %:", result["worker_rss_flat"])
    print("pod (master RSS + workers' USS) MiB:", " ".join(f"{v:.1f}" for v in pod), "flat ±5 %:", result["pod_flat"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
