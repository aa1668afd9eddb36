"""Every Prometheus metric of the server, in one place, with the small helpers the code calls.

Names and labels are fixed by issue 17 (dashboards in ``deploy/grafana/`` and the alert rules in
``deploy/prometheus/`` rely on them); labels are low-cardinality by construction (route = URL pattern name,
never the raw path — the django-prometheus rule).

Under gunicorn the values live in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client multiprocess mode: one mmap
file per process and metric type, summed at scrape time; ``coffee_payment/monitoring/multiproc.py``). The mode is
chosen by prometheus_client when it is first imported, so ``gunicorn.conf.py`` sets the variable before anything
imports this module. Values created in the master before fork (``preload_app``) are re-created in each worker on
its first write: prometheus_client resets every value when it sees a new pid (values.py
``__check_for_pid_change``). Outside gunicorn (runserver, tests) the same calls update in-process values.

Gauge modes (client_python "Multiprocess Mode"): ``livesum`` sums live processes, ``livemax`` keeps the largest
value among live processes; a dead process's live gauges are removed in ``child_exit``.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

# 1 ms … 30 s: a probe answers in well under 1 ms; a provider call may take the whole read timeout (10 s) plus
# the connect timeout; 30 s is gunicorn's default worker timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A worker boots in ~1 s without preload (Django import) and drains for at most the drain deadline (≤ timeout).
LIFECYCLE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)

RESTART_REASONS = ("recycle", "timeout", "crash", "signal", "reload")
DISPENSE_OUTCOMES = ("sent", "accepted", "failed", "unknown")
# Orders staff must look at: the make command failed or its outcome is unknown, or a late payment.
ATTENTION_STATUSES = ("make_failed", "manual_make", "make_unknown")

HTTP_REQUESTS = Counter(
    "coffee_http_requests_total", "HTTP requests answered, by method, route and status.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "coffee_http_request_duration_seconds",
    "Time from request start to the last body byte sent, by method and route.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "coffee_http_requests_in_flight", "Requests being handled right now (all workers).", multiprocess_mode="livesum"
)

WORKERS = Gauge("coffee_workers", "Live workers, as the gunicorn master sees them.", multiprocess_mode="livemax")
WORKER_RESTARTS = Counter(
    "coffee_worker_restarts_total",
    "Workers replaced, by reason: recycle (max_requests), timeout (heartbeat), crash (died without draining, "
    "e.g. SIGKILL/OOM), signal (TERM/INT/QUIT not sent by the master), reload (HUP).",
    ["reason"],
)
WORKER_BOOT = Histogram(
    "coffee_worker_boot_seconds", "Seconds from fork to a worker ready to serve.", buckets=LIFECYCLE_BUCKETS
)
WORKER_DRAIN = Histogram(
    "coffee_worker_drain_seconds",
    "Seconds each worker spent draining in-flight requests before it exited.",
    buckets=LIFECYCLE_BUCKETS,
)
WORKER_DRAIN_DEADLINE = Counter(
    "coffee_worker_drain_deadline_exceeded_total", "Worker drains that hit their deadline (requests cancelled)."
)
# coffee_worker_resident_memory_bytes{pid} is read from /proc at scrape time (multiproc.WorkerMemoryCollector).
WORKER_MEMORY_NAME = "coffee_worker_resident_memory_bytes"

PAYMENTS = Counter(
    "coffee_payments_total",
    "Payment attempt status changes applied, by provider and the attempt's new status.",
    ["provider", "outcome"],
)
NOTIFICATIONS = Counter(
    "coffee_notifications_total", "Provider notifications handled, by provider and verdict.", ["provider", "verdict"]
)
DISPENSES = Counter(
    "coffee_dispenses_total",
    "Make commands: sent, then accepted, failed (refused) or unknown (timeout/5xx: the drink may be made).",
    ["outcome"],
)
ORDERS_NEEDING_ATTENTION = Gauge(
    "coffee_orders_needing_attention",
    "Orders in make_failed, manual_make or make_unknown (refreshed by each worker every 30 s).",
    multiprocess_mode="livemax",
)
OUTBOUND_DURATION = Histogram(
    "coffee_outbound_request_duration_seconds",
    "Calls to YooKassa, TBank and Tmetr, by service, operation and outcome (ok, client_error, server_error, "
    "timeout, error).",
    ["service", "operation", "outcome"],
    buckets=LATENCY_BUCKETS,
)

for _reason in RESTART_REASONS:
    WORKER_RESTARTS.labels(_reason)
for _outcome in DISPENSE_OUTCOMES:
    DISPENSES.labels(_outcome)


_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    """One answered HTTP request (``status`` 0 = the client left before a response started).

    The labelled children are cached: ``labels()`` takes a lock and builds a key on every call, and this runs
    for every request (methods and routes are bounded, so the cache is too).
    """
    children = _request_children.get((method, route, status))
    if children is None:
        children = (HTTP_REQUESTS.labels(method, route, str(status)), HTTP_DURATION.labels(method, route))
        _request_children[(method, route, status)] = children
    children[0].inc()
    children[1].observe(seconds)


def record_restart(reason: str) -> None:
    """A worker was replaced; ``reason`` is one of :data:`RESTART_REASONS`."""
    WORKER_RESTARTS.labels(reason).inc()


def record_payment(provider: str, outcome: str) -> None:
    """A payment attempt of ``provider`` (yookassa, tbank) changed to status ``outcome``."""
    PAYMENTS.labels(provider, outcome).inc()


def record_notification(provider: str, verdict: str) -> None:
    """A provider notification was handled with ``verdict`` (applied, no_change, rejected, …)."""
    NOTIFICATIONS.labels(provider, verdict).inc()


def record_dispense(outcome: str) -> None:
    """A make command was ``sent``, or ended ``accepted``, ``failed`` or ``unknown``."""
    DISPENSES.labels(outcome).inc()


def record_outbound(service: str, operation: str, outcome: str, seconds: float) -> None:
    """One outbound call (``coffee_payment/monitoring/outbound.py`` records every call of the shared client)."""
    OUTBOUND_DURATION.labels(service, operation, outcome).observe(seconds)


def set_orders_needing_attention(count: int) -> None:
    """The number of orders in :data:`ATTENTION_STATUSES`."""
    ORDERS_NEEDING_ATTENTION.set(count)


def set_workers(count: int) -> None:
    """Live workers (master only)."""
    WORKERS.set(count)


def resident_memory_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` from ``/proc/<pid>/statm`` (pages × page size); None if it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return None
