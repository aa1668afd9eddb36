"""Locust profile of the customer flow, kubelet-like probes and an optional notification storm.

Web UI:   ``uv run locust -f loadtests/locustfile.py --host http://127.0.0.1:8000``
Headless: ``uv run locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 --headless -u 50 -r 50 -t 30s``

The server must run with the sandbox in auto-pay mode (``invoke serve --auto-pay --latency-ms 100``, or the load
runner). Every response is validated: a 200 with the wrong body is a failure. Failure messages start with their
kind (``status:``, ``body:``, ``flow:``; anything else is a transport error) and carry no ids, so they group.

``--report-json PATH`` (used by ``loadtests/runner.py``): after ``--warmup-s`` the stats are reset, ``PATH.started``
is written, and after ``--measure-s`` more the measured window (totals, percentiles per endpoint group, failures
by kind, requests per ``X-Worker-Pid``, and ``timeline``: one entry per second of the window) is written to PATH
and locust quits. Totals come from the in-process stats at that instant, not from the final CSV, which lags.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import gevent
from locust import FastHttpUser, between, events, task
from locust.env import Environment
from locust.stats import StatsEntry

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # `locust -f loadtests/locustfile.py` puts only loadtests/ on the path
    sys.path.insert(0, _ROOT)

from coffee_payment.orders.polling import STATUS_POLL_INTERVAL_MS  # noqa: E402 - plain Python, no Django setup

# The status page's own interval: the profile polls as often as a customer's page does.
POLL_INTERVAL_S = STATUS_POLL_INTERVAL_MS / 1000

# The demo devices seeded by ``manage.py seed_demo`` (coffee_payment/devices/demo.py DEMO_DEVICES). Copied, not
# imported: importing the Django models would need Django set up inside the load generator.
# tests/integration/test_locust_smoke.py checks that these stay equal to DEMO_DEVICES.
DEVICES = {
    "yookassa": ("3f0c2a9e-5b1d-4c8e-9a77-0d6f2b1e4c55", "7c9e6679f4254a0b8d1e2f3a4b5c6d7e", "Капучино"),
    "tbank": ("8a1d4b2c-6e3f-4a5b-9c7d-1e2f3a4b5c6d", "1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6", "Латте"),
}
ORDER_STATUSES = {
    "created",
    "pending",
    "paid",
    "make_pending",
    "successful",
    "not_paid",
    "failed",
    "make_failed",
    "manual_make",
    "refunded",
}
DONE = {"make_pending", "successful"}  # the drink is being made
DEAD_ENDS = {"not_paid", "failed", "make_failed", "manual_make", "refunded"}
PROBE_PATHS = ("/health", "/livez", "/readyz")
FLOW = "FLOW"  # request_type of the pseudo-request recording one whole customer flow (excluded from HTTP totals)
FLOW_NAME = "customer flow: scan → make_pending"

# Completed YooKassa payments, shared with the storm user (it re-sends their notification).
_PAID: deque[tuple[str, str]] = deque(maxlen=500)
_PID_COUNTS: Counter[str] = Counter()
_WINDOW: dict[str, float] = {}
# Second of the measured window → what ended in it: completed flows, customer response times (ms), failures
# (HTTP and flows), distinct X-Worker-Pid values.
_SECONDS: dict[int, dict[str, Any]] = {}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    # On the parser itself, not a group: only parser.add_argument knows locust's include_in_web_ui.
    group = parser
    group.add_argument("--customer-weight", type=int, default=10, help="weight of CustomerUser")
    group.add_argument("--probe-weight", type=int, default=1, help="weight of ProbeUser")
    group.add_argument("--storm-weight", type=int, default=0, help="weight of NotificationStormUser (0 = off)")
    group.add_argument(
        "--poll-interval",
        type=float,
        default=POLL_INTERVAL_S,
        help=f"seconds between status polls (default {POLL_INTERVAL_S:g}: the status page's; 0.25 = aggressive)",
    )
    group.add_argument("--think-time", type=float, default=0.5, help="max seconds a customer waits between steps")
    group.add_argument("--probe-interval", type=float, default=0.2, help="seconds between probes per ProbeUser")
    group.add_argument("--flow-timeout", type=float, default=30.0, help="seconds a flow may take to make_pending")
    group.add_argument("--providers", default="yookassa,tbank", help="comma-separated demo devices to use")
    group.add_argument("--storm-duplicates", type=int, default=5, help="notifications re-sent per paid order")
    group.add_argument("--report-json", default="", include_in_web_ui=False, help="write the measured window here")
    group.add_argument("--warmup-s", type=float, default=5.0, include_in_web_ui=False, help="before measuring")
    group.add_argument("--measure-s", type=float, default=0.0, include_in_web_ui=False, help="then quit; 0 = never")


def _apply_weights(environment: Environment) -> None:
    options = environment.parsed_options
    if options is None:
        return
    CustomerUser.weight = options.customer_weight
    ProbeUser.weight = options.probe_weight
    NotificationStormUser.weight = options.storm_weight
    CustomerUser.wait_time = between(0, options.think_time)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    _apply_weights(environment)
    if environment.parsed_options is not None and environment.parsed_options.storm_weight <= 0:
        # A class with weight 0 would still be offered by the UI; drop it so headless runs never spawn it.
        environment.user_classes = [c for c in environment.user_classes if c is not NotificationStormUser]


def endpoint_kind(name: str) -> str:
    """``probe``, ``storm`` or ``customer``: the group a request name belongs to."""
    return "probe" if name in PROBE_PATHS else "storm" if "storm" in name or "webhook" in name else "customer"


@events.request.add_listener
def _per_second(
    request_type: str = "", name: str = "", response_time: float = 0.0, exception: Any = None, **kw: Any
) -> None:
    if "start" not in _WINDOW:
        return
    second = _SECONDS.setdefault(
        int(time.time() - _WINDOW["start"]), {"flows": 0, "customer_ms": [], "failures": 0, "pids": set()}
    )
    second["failures"] += exception is not None
    if request_type == FLOW:
        second["flows"] += exception is None
        return
    if endpoint_kind(name) == "customer":
        second["customer_ms"].append(response_time)
    headers = getattr(kw.get("response"), "headers", None)
    if headers is not None and headers.get("x-worker-pid"):
        second["pids"].add(headers.get("x-worker-pid"))


def _percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def timeline(seconds: float) -> list[dict[str, Any]]:
    """Per whole second ``t`` of the window: ``flows`` completed, customer ``p50_ms``/``p99_ms`` (None without
    customer requests), ``failures`` (HTTP + flows) and ``pids_seen`` (distinct X-Worker-Pid answering)."""
    out = []
    for t in range(int(seconds)):
        second = _SECONDS.get(t, {"flows": 0, "customer_ms": [], "failures": 0, "pids": set()})
        out.append(
            {
                "t": t,
                "flows": second["flows"],
                "p50_ms": _percentile(second["customer_ms"], 0.50),
                "p99_ms": _percentile(second["customer_ms"], 0.99),
                "failures": second["failures"],
                "pids_seen": len(second["pids"]),
            }
        )
    return out


@events.request.add_listener
def _count_worker(response: Any = None, request_type: str = "", **_: Any) -> None:
    if request_type == FLOW or response is None or not _WINDOW.get("counting"):
        return
    headers = getattr(response, "headers", None)
    pid = headers.get("x-worker-pid") if headers is not None else None
    _PID_COUNTS[pid or "none"] += 1


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    _apply_weights(environment)
    options = environment.parsed_options
    _WINDOW["counting"] = 1
    if options is not None and options.report_json:
        gevent.spawn(_measure, environment, Path(options.report_json), options.warmup_s, options.measure_s)


def _measure(environment: Environment, path: Path, warmup_s: float, measure_s: float) -> None:
    gevent.sleep(warmup_s)
    environment.runner.stats.reset_all()
    _PID_COUNTS.clear()
    _SECONDS.clear()
    _WINDOW["start"] = time.time()
    path.with_name(path.name + ".started").write_text(json.dumps({"start": _WINDOW["start"]}))
    if measure_s <= 0:
        return
    gevent.sleep(measure_s)
    report = window_report(environment, time.time() - _WINDOW["start"])
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    environment.runner.quit()


def _entry(stats: StatsEntry, seconds: float) -> dict[str, Any]:
    pct = stats.get_response_time_percentile
    return {
        "requests": stats.num_requests,
        "failures": stats.num_failures,
        "rps": stats.num_requests / seconds if seconds else 0.0,
        "p50_ms": pct(0.50) if stats.num_requests else None,
        "p95_ms": pct(0.95) if stats.num_requests else None,
        "p99_ms": pct(0.99) if stats.num_requests else None,
        "avg_ms": stats.avg_response_time,
        "max_ms": stats.max_response_time,
    }


def failure_kind(error: str) -> str:
    """``status``/``body``/``flow`` for our validation messages, else ``transport`` (connection reset, timeout…)."""
    head = error.split(":", 1)[0].strip().strip("'\"").lower()
    return head if head in ("status", "body", "flow") else "transport"


def window_report(environment: Environment, seconds: float) -> dict[str, Any]:
    """Every figure of the measured window, from the live stats (JSON-able)."""
    stats = environment.runner.stats
    groups: dict[str, dict[str, Any]] = {}
    merged = {
        "customer": StatsEntry(stats, "customer", ""),
        "probe": StatsEntry(stats, "probe", ""),
        "storm": StatsEntry(stats, "storm", ""),
        "http": StatsEntry(stats, "http", ""),
    }
    flow = None
    for (name, method), entry in stats.entries.items():
        if method == FLOW:
            flow = _entry(entry, seconds)
            continue
        groups[f"{method} {name}"] = _entry(entry, seconds)
        merged[endpoint_kind(name)].extend(entry)
        merged["http"].extend(entry)
    failures: list[dict[str, Any]] = []
    by_kind: Counter[str] = Counter()
    for error in stats.errors.values():
        text = str(error.error)
        kind = failure_kind(text)
        by_kind[kind] += error.occurrences
        failures.append(
            {"method": error.method, "name": error.name, "error": text, "kind": kind, "occurrences": error.occurrences}
        )
    total_pid = sum(_PID_COUNTS.values())
    return {
        "seconds": seconds,
        "users": environment.runner.user_count,
        "user_classes": {c.__name__: c.weight for c in environment.user_classes},
        "totals": _entry(merged["http"], seconds),
        "classes": {k: _entry(v, seconds) for k, v in merged.items() if v.num_requests and k != "http"},
        "groups": groups,
        "flow": flow,
        "failures_by_kind": dict(by_kind),
        "failures": sorted(failures, key=lambda f: -f["occurrences"]),
        "worker_requests": dict(_PID_COUNTS),
        "worker_shares": {pid: n / total_pid for pid, n in _PID_COUNTS.items()} if total_pid else {},
        "timeline": timeline(seconds),
    }


def qr_query(provider: str) -> str:
    """A real-shaped QR link query for a demo device with a fresh machine ``uuid`` (domain.md §1)."""
    device_uuid, drink_no, drink_name = DEVICES[provider]
    return urlencode(
        {
            "deviceUuid": device_uuid,
            "drinkNo": drink_no,
            "size": secrets.choice("012"),
            "random": secrets.token_hex(3),
            "ts": int(time.time()),
            "salt": secrets.token_hex(16),
            "drinkName": drink_name,
            "uuid": "load" + secrets.token_hex(12),
        }
    )


def _json(response: Any) -> Any:
    try:
        return json.loads(response.content or b"")
    except ValueError:
        return None


class CustomerUser(FastHttpUser):
    """Scan → status page → poll → Pay → (sandbox auto-pays) → poll until the drink is being made."""

    weight = 10
    wait_time = between(0, 0.5)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.providers = [p.strip() for p in (options.providers if options else "yookassa,tbank").split(",")]
        self.poll_interval = options.poll_interval if options else POLL_INTERVAL_S
        self.flow_timeout = options.flow_timeout if options else 30.0

    def _status(self, order_id: str) -> dict[str, Any] | None:
        with self.client.get(
            f"/v1/order-status/{order_id}", name="/v1/order-status/[id]", catch_response=True
        ) as response:
            body = _json(response)
            if response.status_code != 200:
                response.failure(f"status: HTTP {response.status_code}")
            elif (
                not isinstance(body, dict)
                or body.get("order_id") != order_id
                or body.get("status") not in ORDER_STATUSES
                or "price" not in body
            ):
                response.failure("body: status JSON without order_id/status/price")
            else:
                return body
        return None

    def _flow_done(self, started: float, failure: str | None = None) -> None:
        """Record the whole flow as one pseudo-request (``FLOW``); ``failure`` says why it did not finish."""
        self.environment.events.request.fire(
            request_type=FLOW,
            name=FLOW_NAME,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=None if failure is None else Exception(f"flow: {failure}"),
            context={},
        )

    @task
    def buy_a_drink(self) -> None:
        provider = secrets.choice(self.providers)
        started = time.perf_counter()
        with self.client.get(
            f"/v1/pay?{qr_query(provider)}", name="/v1/pay", allow_redirects=False, catch_response=True
        ) as response:
            location = response.headers.get("location", "") if response.headers else ""
            if response.status_code != 302 or "/v1/order-status-page?order_id=" not in location:
                response.failure(f"status: HTTP {response.status_code} (expected a 302 to the status page)")
                return
            order_id = location.split("order_id=", 1)[1]
        with self.client.get(
            f"/v1/order-status-page?order_id={order_id}", name="/v1/order-status-page", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status: HTTP {response.status_code}")
                return
            if order_id not in (response.text or ""):
                response.failure("body: status page does not mention the order")
                return
        body = self._status(order_id)
        if body is None:
            return
        if body["status"] != "created" or not body.get("can_pay"):
            self._flow_done(started, f"new order is {body['status']} (can_pay={body.get('can_pay')})")
            return
        self.wait()  # the customer reads the page, then taps Pay
        with self.client.post(
            "/v1/initiate-payment", json={"order_id": order_id}, name="/v1/initiate-payment", catch_response=True
        ) as response:
            body = _json(response)
            if response.status_code != 200:
                response.failure(f"status: HTTP {response.status_code}")
                return
            if not isinstance(body, dict) or "/_sandbox/checkout/" not in str(body.get("redirect_url", "")):
                response.failure("body: no sandbox redirect_url")
                return
            payment_id = body["redirect_url"].rstrip("/").rsplit("/", 1)[1]
        # The sandbox pays by itself (auto-pay) and notifies us; the customer comes back and the page polls.
        deadline = started + self.flow_timeout
        while True:
            gevent.sleep(self.poll_interval)
            body = self._status(order_id)
            if body is None:
                return
            if body["status"] in DONE:
                break
            if body["status"] in DEAD_ENDS:
                self._flow_done(started, f"ended in {body['status']}")
                return
            if time.perf_counter() > deadline:
                self._flow_done(started, f"still {body['status']} after {self.flow_timeout:g} s")
                return
        self._flow_done(started)
        if provider == "yookassa":
            _PAID.append((order_id, payment_id))


class ProbeUser(FastHttpUser):
    """Kubelet-like ``/health`` probes: a new connection per probe (the kubelet does not keep probes alive)."""

    weight = 1

    def wait_time(self) -> float:
        options = self.environment.parsed_options
        return options.probe_interval if options else 0.2

    @task
    def health(self) -> None:
        with self.client.get(
            "/health", headers={"Connection": "close", "User-Agent": "kube-probe/1.31"}, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status: HTTP {response.status_code}")
            elif _json(response) != {"status": "ok"}:
                response.failure('body: not {"status":"ok"}')


class NotificationStormUser(FastHttpUser):
    """Re-sends YooKassa's ``payment.succeeded`` for orders already being made (duplicates must be no-ops)."""

    weight = 1  # set from --storm-weight; the class is dropped when that is 0
    wait_time = between(0.1, 0.5)

    @task
    def storm(self) -> None:
        if not _PAID:
            gevent.sleep(0.5)
            return
        order_id, payment_id = secrets.choice(list(_PAID))
        notification = {
            "type": "notification",
            "event": "payment.succeeded",
            "object": {"id": payment_id, "status": "succeeded", "paid": True, "metadata": {"order_id": order_id}},
        }
        options = self.environment.parsed_options
        for _ in range(options.storm_duplicates if options else 5):
            with self.client.post(
                "/v1/yook-pay-webhook", json=notification, name="/v1/yook-pay-webhook", catch_response=True
            ) as response:
                if response.status_code != 200:
                    response.failure(f"status: HTTP {response.status_code}")
        with self.client.get(
            f"/v1/order-status/{order_id}", name="/v1/order-status/[id] (after storm)", catch_response=True
        ) as response:
            body = _json(response)
            if response.status_code != 200:
                response.failure(f"status: HTTP {response.status_code}")
            elif not isinstance(body, dict) or body.get("status") not in DONE:
                response.failure("body: a duplicate notification moved a made order")
