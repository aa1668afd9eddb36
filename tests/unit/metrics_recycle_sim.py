"""Simulate N worker recycles against the real compaction code; print a JSON report (run as a subprocess with
``PROMETHEUS_MULTIPROC_DIR`` set, so prometheus_client starts in multiprocess mode).

Each "worker" is a forked child that records what a worker records (requests, a dispense, a drain, the in-flight
gauge) and exits; the parent reaps it and runs ``compact`` exactly as the gunicorn master's ``child_exit`` does.
Usage: ``python -m tests.unit.metrics_recycle_sim N CHECKPOINT...``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from coffee_payment.monitoring import metrics
from coffee_payment.monitoring.multiproc import compact, scrape_registry

REQUESTS_PER_WORKER = 3
SCRAPES = 7


def _worker() -> None:
    metrics.HTTP_IN_FLIGHT.inc()
    for _ in range(REQUESTS_PER_WORKER):
        metrics.record_request("GET", "order-status", 200, 0.004)
    metrics.record_dispense("accepted")
    metrics.WORKER_DRAIN.observe(0.2)
    os._exit(0)


def _scrape(registry) -> tuple[float, str]:
    timings = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        text = generate_latest(registry).decode()
        timings.append(time.perf_counter() - started)
    return sorted(timings)[SCRAPES // 2], text


def _value(text: str, sample_name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def main(recycles: int, checkpoints: set[int]) -> dict[int, dict[str, float]]:
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    registry = scrape_registry(directory, lambda: [])
    report: dict[int, dict[str, float]] = {}
    for n in range(1, recycles + 1):
        pid = os.fork()
        if pid == 0:
            _worker()
        os.waitpid(pid, 0)
        compact(directory, pid)
        if n in checkpoints:
            seconds, text = _scrape(registry)
            files = list(directory.iterdir())
            report[n] = {
                "files": len(files),
                "bytes": sum(f.stat().st_size for f in files),
                "scrape_seconds": seconds,
                "requests": _value(text, "coffee_http_requests_total", {"route": "order-status"}),
                "dispenses": _value(text, "coffee_dispenses_total", {"outcome": "accepted"}),
                "drains": _value(text, "coffee_worker_drain_seconds_count", {}),
                "drain_le_0_25": _value(text, "coffee_worker_drain_seconds_bucket", {"le": "0.25"}),
                "in_flight": _value(text, "coffee_http_requests_in_flight", {}),
            }
    return report


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), {int(a) for a in sys.argv[2:]})))
