"""Read the server's Prometheus metrics listener (coffee_payment/monitoring/metrics.py) from the dev tools.

:func:`parse` keeps the figures the load report and the shutdown drill use; :func:`window` is the change between
two scrapes; :class:`MetricsWatch` scrapes every ``interval`` seconds in a thread and keeps the last good scrape
(the listener lives in the gunicorn master, so it vanishes when the master exits). No metric has a ``pid`` label
except ``coffee_worker_resident_memory_bytes``: request counts and drain seconds are totals over all workers.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "coffee_http_requests_total"
RESTARTS = "coffee_worker_restarts_total"
MEMORY = "coffee_worker_resident_memory_bytes"
DRAIN = "coffee_worker_drain_seconds"


def parse(text: str) -> dict[str, Any]:
    """The figures the report uses from one scrape's exposition text: ``requests`` (all routes), ``webhooks`` (of
    them, the providers' notifications: the sandbox sends them, not locust), ``restarts``
    {reason: n}, ``pids`` (live workers' pids, sorted), ``workers`` (coffee_workers), ``drain_count`` and
    ``drain_sum_s`` (coffee_worker_drain_seconds)."""
    found: dict[str, Any] = {"requests": 0.0, "webhooks": 0.0, "restarts": {}, "pids": [], "workers": None}
    found |= {"drain_count": 0.0, "drain_sum_s": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == REQUESTS:
                found["requests"] += sample.value
                if sample.labels.get("route", "").endswith("-webhook"):
                    found["webhooks"] += sample.value
            elif sample.name == RESTARTS:
                found["restarts"][sample.labels["reason"]] = sample.value
            elif sample.name == MEMORY:
                found["pids"].append(int(sample.labels["pid"]))
            elif sample.name == "coffee_workers":
                found["workers"] = sample.value
            elif sample.name == f"{DRAIN}_count":
                found["drain_count"] = sample.value
            elif sample.name == f"{DRAIN}_sum":
                found["drain_sum_s"] = sample.value
    found["pids"].sort()
    return found


def scrape(url: str) -> dict[str, Any]:
    """GET ``url`` (the metrics listener's /metrics) and :func:`parse` it; ``{"error": …}`` when unreachable."""
    try:
        response = httpx.get(url, timeout=10)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return parse(response.text)


def window(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What changed between two :func:`parse` results: ``requests`` and ``restarts`` by reason (deltas), drains,
    and the live ``pids``/``workers`` at the end. ``{"error"}`` when either scrape failed."""
    if "error" in before or "error" in after:
        return {"error": before.get("error") or after.get("error")}
    reasons = sorted({*before["restarts"], *after["restarts"]})
    return {
        "requests": after["requests"] - before["requests"],
        "webhooks": after.get("webhooks", 0.0) - before.get("webhooks", 0.0),
        "restarts": {r: after["restarts"].get(r, 0.0) - before["restarts"].get(r, 0.0) for r in reasons},
        "drains": after["drain_count"] - before["drain_count"],
        "drain_s": after["drain_sum_s"] - before["drain_sum_s"],
        "pids": after["pids"],
        "workers": after["workers"],
    }


class MetricsWatch:
    """Scrape ``url`` every ``interval`` seconds until ``stop`` is set; ``mark()`` keeps the last scrape as the
    baseline (e.g. just before a drill's signal); ``summary()`` is :func:`window` from the baseline to the last
    good scrape, plus ``scrapes`` (successful ones) and ``last_at`` (seconds after the mark)."""

    def __init__(self, url: str, interval: float = 0.1) -> None:
        self.url, self.interval = url, interval
        self.last: dict[str, Any] | None = None
        self.baseline: dict[str, Any] | None = None
        self.scrapes = 0
        self._marked_at = self._last_at = 0.0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            found = scrape(self.url)
            if "error" not in found:
                self.last, self._last_at = found, time.monotonic()
                self.scrapes += 1
            stop.wait(self.interval)

    def mark(self) -> None:
        self.baseline, self._marked_at = self.last or scrape(self.url), time.monotonic()

    def summary(self) -> dict[str, Any] | None:
        if self.baseline is None or self.last is None:
            return None
        return window(self.baseline, self.last) | {
            "scrapes": self.scrapes,
            "last_at": round(self._last_at - self._marked_at, 3),
        }
