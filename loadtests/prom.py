"""The server's Prometheus metrics (coffee_payment/monitoring/metrics.py) read by the load runner around a window.

No request metric has a ``pid`` label (by design: per-pid series would grow with every recycle), so per-worker
request shares come from ``X-Worker-Pid`` only. What the metrics give, and what the report cross-checks:
the window's requests (``coffee_http_requests_total`` delta) vs locust's request count and the ``X-Worker-Pid``
sum; restarts by reason (``coffee_worker_restarts_total`` delta) vs the pid changes /proc saw; the live workers
(``coffee_worker_resident_memory_bytes{pid}``, the only per-pid series) vs the pids that answered.
"""

from __future__ import annotations

import html as _html
from typing import Any

from devtools.metrics_scrape import MEMORY, parse, scrape, window

__all__ = ["cross_check", "parse", "scrape", "section", "window"]


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
        "metrics_webhooks": metrics.get("webhooks", 0.0),
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
                f"{check['metrics_requests']:.0f} ({check['metrics_webhooks']:.0f} webhooks)",
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
        f"{MEMORY}'s. The server's count includes the providers' notifications (webhooks), which the sandbox "
        "sends, not locust; requests in flight at the window's edges make the counts differ by a few more.</p>"
        "<table style='font-size:80%'><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table>\n"
    )
