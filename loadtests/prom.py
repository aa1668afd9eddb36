"""The server's Prometheus metrics (coffee_payment/monitoring/metrics.py) read by the load runner around a window.

No request metric has a ``pid`` label (one by design: per-pid series would grow with every recycle), so per-worker
request shares come from ``X-Worker-Pid`` only. What the metrics give, and what the report cross-checks:
the window's requests (``coffee_http_requests_total`` delta) vs locust's request count and the ``X-Worker-Pid``
sum; restarts by reason (``coffee_worker_restarts_total`` delta) vs the pid changes /proc saw; the live workers
(``coffee_worker_resident_memory_bytes{pid}``, the only per-pid series) vs the pids that answered.
"""

from __future__ import annotations

import html as _html
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "coffee_http_requests_total"
RESTARTS = "coffee_worker_restarts_total"
MEMORY = "coffee_worker_resident_memory_bytes"
DRAIN = "coffee_worker_drain_seconds"


def parse(text: str) -> dict[str, Any]:
    """The figures the report uses from one scrape's exposition text: ``requests`` (all routes), ``restarts``
    {reason: n}, ``pids`` (live workers' pids, sorted), ``workers`` (coffee_workers), ``drain_count`` and
    ``drain_sum_s`` (coffee_worker_drain_seconds)."""
    found: dict[str, Any] = {"requests": 0.0, "restarts": {}, "pids": [], "workers": None}
    found |= {"drain_count": 0.0, "drain_sum_s": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == REQUESTS:
                found["requests"] += sample.value
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
        "restarts": {r: after["restarts"].get(r, 0.0) - before["restarts"].get(r, 0.0) for r in reasons},
        "drains": after["drain_count"] - before["drain_count"],
        "drain_s": after["drain_sum_s"] - before["drain_sum_s"],
        "pids": after["pids"],
        "workers": after["workers"],
    }


def cross_check(record: dict[str, Any]) -> dict[str, Any] | None:
    """One round's metrics next to locust's and /proc's figures, or None when the round has no metrics."""
    metrics = record.get("metrics")
    if not metrics or "error" in metrics:
        return None
    locust = record.get("locust") or {}
    worker_requests = locust.get("worker_requests") or {}
    changes = (locust.get("workers") or {}).get("changes", [])
    return {
        "metrics_requests": metrics["requests"],
        "locust_requests": (locust.get("totals") or {}).get("requests"),
        "x_worker_pid_requests": sum(worker_requests.values()),
        "metrics_restarts": sum(metrics["restarts"].values()),
        "restarts_by_reason": {r: n for r, n in metrics["restarts"].items() if n},
        "proc_recycles": sum(1 for c in changes if c.get("exited") and c.get("booted")),
        "metrics_pids": metrics["pids"],
        "answered_pids": sorted(int(p) for p in worker_requests if p.isdigit()),
    }


def section(data: dict[str, Any]) -> str:
    """HTML table "Metrics cross-check" (one row per target and round with metrics); "" when no round has any."""
    runs = [*(data.get("targets") or {}).items()]
    if data.get("recycling"):
        runs.append((data["recycling"].get("label", "recycling"), data["recycling"]))
    rows = []
    for label, run in runs:
        for record in run.get("rounds") or []:
            if (check := cross_check(record)) is None:
                continue
            reasons = ", ".join(f"{r} {n:.0f}" for r, n in check["restarts_by_reason"].items()) or "none"
            cells = [
                f"{label} · {record.get('round')}",
                f"{check['metrics_requests']:.0f}",
                f"{check['locust_requests']}",
                f"{check['x_worker_pid_requests']}",
                f"{check['metrics_restarts']:.0f} ({reasons})",
                f"{check['proc_recycles']}",
                " ".join(map(str, check["metrics_pids"])),
                " ".join(map(str, check["answered_pids"])),
            ]
            rows.append("<tr>" + "".join(f"<td>{_html.escape(c)}</td>" for c in cells) + "</tr>")
    if not rows:
        return ""
    head = (
        "target · round", "requests (metrics)", "requests (locust)", "requests (X-Worker-Pid)",
        "restarts (metrics)", "recycles (/proc)", "live pids (metrics)", "pids that answered",
    )  # fmt: skip
    return (
        "<h2>Metrics cross-check</h2><p>Deltas of the server's Prometheus metrics over each measured window. No "
        "request metric has a pid label, so per-worker shares are X-Worker-Pid's; the live pids are "
        f"{MEMORY}'s. Requests in flight at the window's edges make the counts differ by a few.</p>"
        "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>\n"
    )
