"""Request layer, request ids, log formats, outbound instrumentation, restart reasons — in-process, no server."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from prometheus_client import REGISTRY

from coffee_payment.monitoring import logformat
from coffee_payment.monitoring.asgi import django_route, observe
from coffee_payment.monitoring.outbound import ObservedTransport, classify
from coffee_payment.monitoring.requestid import REQUEST_ID, RequestIdFilter, accept_request_id
from coffee_payment.serving import metrics_hooks
from coffee_payment.serving.metrics_hooks import exit_note, metrics_port, restart_reason

ROOT = Path(__file__).resolve().parents[2]

SERVICES = {
    "yookassa": "http://sb/yookassa/v3/",
    "tbank": "http://sb/tbank/v2/",
    "tmetr": "http://sb/tmetr/",
}


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _app(scope, receive, send):
    logging.getLogger("coffee_payment.test").warning("inside the view")
    await send({"type": "http.response.start", "status": 201, "headers": [(b"x-request-id", b"app-set")]})
    await send({"type": "http.response.body", "body": b"hello", "more_body": True})
    await send({"type": "http.response.body", "body": b"!"})


def _request(app, path="/v1/pay", headers=(), client=("10.0.0.1", 5000)):
    messages = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        messages.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"a=1", "headers": list(headers)}
    scope["client"] = client
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 5))
    return dict(messages[0]["headers"]), messages


def _access_stream(fmt="plain"):
    stream = io.StringIO()
    return logformat.access_logger(fmt, stream), stream


@pytest.mark.timeout(10)
def test_request_layer_trusts_the_proxys_request_id_and_logs_every_field():
    log, stream = _access_stream()
    app = observe(_app, trusted=lambda ip: ip == "10.0.0.1", access_log=log, route_of=lambda p: "pay")
    before = _sample("coffee_http_requests_total", {"method": "GET", "route": "pay", "status": "201"})
    headers, _ = _request(app, headers=[(b"x-request-id", b"ingress-1234")])
    assert headers[b"x-request-id"] == b"ingress-1234"  # replaces any id the app set, once
    line = stream.getvalue().strip()
    assert " GET /v1/pay 201 " in line and "ms 6B client=10.0.0.1 request_id=ingress-1234 pid=" in line
    assert "a=1" not in line
    assert _sample("coffee_http_requests_total", {"method": "GET", "route": "pay", "status": "201"}) == before + 1


@pytest.mark.timeout(10)
def test_request_id_from_an_untrusted_peer_or_malformed_is_replaced():
    app = observe(_app, trusted=lambda ip: ip == "10.0.0.9", access_log=None, route_of=lambda p: "pay")
    headers, _ = _request(app, headers=[(b"x-request-id", b"spoofed")])
    assert headers[b"x-request-id"] != b"spoofed" and len(headers[b"x-request-id"]) == 32
    assert accept_request_id(b"bad id\n") is None and accept_request_id(b"x" * 129) is None
    assert accept_request_id(b"0f1e2d3c-ab.cd:ef_9") == "0f1e2d3c-ab.cd:ef_9"


@pytest.mark.timeout(10)
def test_probes_counted_but_not_logged_unless_asked():
    log, stream = _access_stream()
    quiet = observe(_app, trusted=lambda ip: False, access_log=log, route_of=lambda p: "probe")
    _request(quiet, path="/livez")
    assert stream.getvalue() == ""
    loud = observe(_app, trusted=lambda ip: False, access_log=log, route_of=lambda p: "probe", log_probes=True)
    _request(loud, path="/livez")
    assert "GET /livez 201" in stream.getvalue()


@pytest.mark.timeout(10)
def test_json_access_line_has_every_field():
    log, stream = _access_stream("json")
    app = observe(_app, trusted=lambda ip: True, access_log=log, route_of=lambda p: "pay")
    _request(app, headers=[(b"x-request-id", b"rid-json")])
    record = json.loads(stream.getvalue())
    assert set(record) >= {"time", "method", "path", "status", "duration_ms", "bytes", "client_ip", "request_id"}
    assert "worker_pid" in record and record["time"].endswith("Z")
    assert (record["method"], record["path"], record["status"], record["bytes"]) == ("GET", "/v1/pay", 201, 6)
    assert record["request_id"] == "rid-json" and record["client_ip"] == "10.0.0.1"


@pytest.mark.timeout(10)
def test_app_log_lines_carry_the_request_id_also_in_sync_code():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logformat.app_formatter("plain"))
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("coffee_payment.monitoring.test_sync")
    logger.addHandler(handler)
    logger.propagate = False

    async def main():
        REQUEST_ID.set("rid-sync")
        await sync_to_async(logger.warning)("from a thread")

    asyncio.run(main())
    logger.warning("outside")
    lines = stream.getvalue().splitlines()
    assert "request_id=rid-sync: from a thread" in lines[0] and "request_id=-: outside" in lines[1]


def test_log_format_falls_back_to_plain_with_a_warning():
    warnings = []
    assert logformat.log_format({"LOG_FORMAT": "JSON"}) == "json"
    assert logformat.log_format({}) == "plain"
    assert logformat.log_format({"LOG_FORMAT": "xml"}, warn=warnings.append) == "plain"
    assert warnings and "LOG_FORMAT='xml'" in warnings[0]


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/health", "probe"),
        ("/readyz", "probe"),
        ("/static/admin/css/base.css", "static"),
        ("/admin/login/", "admin"),
        ("/v1/order-status/0c9a3f", "order-status"),
        ("/v1/yook-pay-webhook", "yookassa-webhook"),
        ("/wp-login.php", "unmatched"),
    ],
)
def test_route_label_is_the_url_pattern_name_never_the_path(path, route):
    assert django_route(path) == route


@pytest.mark.timeout(120)
def test_a_moved_admin_is_labelled_admin_and_the_old_path_unmatched(tmp_path):
    """Was: with ``ADMIN_URL_PREFIX`` set, every admin request was labelled ``unmatched`` (the label looked for
    ``/admin/``), so the admin's traffic vanished into the scanners' label."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update({"ADMIN_URL_PREFIX": "ops/panel", "SECRET_KEY": "x" * 50, "VAR_DIR": str(tmp_path)})
    code = (
        "from coffee_payment.monitoring.asgi import django_route as r; "
        "print(r('/ops/panel/login/'), r('/ops/panel/'), r('/admin/login/'), r('/v1/order-status/x'))"
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-4:] == ["admin", "admin", "unmatched", "order-status"]


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("POST", "http://sb/yookassa/v3/payments", ("yookassa", "create_payment")),
        ("GET", "http://sb/yookassa/v3/payments/2f-1", ("yookassa", "get_payment")),
        ("POST", "http://sb/tbank/v2/GetState", ("tbank", "get_payment")),
        ("POST", "http://sb/tmetr/api/commander/v1/command/make", ("tmetr", "make")),
        ("POST", "http://sb/tmetr/api/unknown", ("tmetr", "other")),
        ("GET", "http://elsewhere/x", ("other", "other")),
    ],
)
def test_outbound_calls_are_classified_with_bounded_labels(method, url, expected):
    assert classify(url, method, SERVICES) == expected


@pytest.mark.timeout(10)
def test_outbound_transport_sends_the_request_id_and_times_every_outcome():
    seen = []

    def reply(request):
        seen.append(request.headers.get("x-request-id"))
        if request.url.path.endswith("GetState"):
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(503 if request.url.path.endswith("Init") else 200, json={})

    labels = {"service": "tbank", "operation": "create_payment", "outcome": "server_error"}
    timeouts = {"service": "tbank", "operation": "get_payment", "outcome": "timeout"}
    before = (
        _sample("coffee_outbound_request_duration_seconds_count", labels),
        _sample("coffee_outbound_request_duration_seconds_count", timeouts),
    )

    async def main():
        transport = ObservedTransport(httpx.MockTransport(reply), services=lambda: SERVICES)
        async with httpx.AsyncClient(transport=transport) as client:
            REQUEST_ID.set("rid-out")
            await client.post("http://sb/tbank/v2/Init", json={})
            with pytest.raises(httpx.ReadTimeout):
                await client.post("http://sb/tbank/v2/GetState", json={})

    asyncio.run(asyncio.wait_for(main(), 5))
    assert seen == ["rid-out", "rid-out"]
    assert _sample("coffee_outbound_request_duration_seconds_count", labels) == before[0] + 1
    assert _sample("coffee_outbound_request_duration_seconds_count", timeouts) == before[1] + 1


@pytest.mark.parametrize(
    ("pid", "aborted", "note", "master_signal", "reloading", "reason"),
    [
        (11, False, "recycle", None, False, "recycle"),
        (12, False, "signal", None, False, "signal"),
        (13, False, None, None, False, "crash"),
        (14, True, None, 9, False, "timeout"),
        (15, False, "signal", 15, True, "reload"),
        (16, False, "signal", 15, False, None),  # TTOU or shutdown: stopped on purpose, not a restart
    ],
)
def test_restart_reason(monkeypatch, pid, aborted, note, master_signal, reloading, reason):
    monkeypatch.setattr(metrics_hooks._State, "master_signals", {pid: master_signal} if master_signal else {})
    monkeypatch.setattr(metrics_hooks._State, "reloading", {pid} if reloading else set())
    assert restart_reason(pid=pid, aborted=aborted, note=note) == reason


class _Server:
    def __init__(self, started=True, cause=None):
        self.started, self.cause = started, cause


def test_exit_note_says_recycle_or_signal():
    assert exit_note(_Server(cause=None)) == "recycle"
    assert exit_note(_Server(cause="SIGTERM (graceful)")) == "signal"
    assert exit_note(_Server(cause="second SIGINT (quick)")) == "signal"
    assert exit_note(_Server(started=False)) is None and exit_note(None) is None


def test_metrics_port_is_never_the_public_port(capsys):
    assert metrics_port({}, {8000}) == 9464
    assert metrics_port({"METRICS_PORT": "0"}, {8000}) == 0
    assert metrics_port({"METRICS_PORT": "8000"}, {8000, 8443}) == 0
    assert "METRICS_PORT=8000 is the public port" in capsys.readouterr().err
    assert metrics_port({"METRICS_PORT": "0x10"}, {8000}) == 9464
    assert "METRICS_PORT='0x10'" in capsys.readouterr().err


@pytest.mark.timeout(10)
def test_an_app_error_is_counted_as_500_and_logged():
    async def failing(scope, receive, send):
        raise RuntimeError("boom")

    log, stream = _access_stream()
    app = observe(failing, trusted=lambda ip: False, access_log=log, route_of=lambda p: "broken")
    before = _sample("coffee_http_requests_total", {"method": "GET", "route": "broken", "status": "500"})
    with pytest.raises(RuntimeError):
        _request(app)
    assert _sample("coffee_http_requests_total", {"method": "GET", "route": "broken", "status": "500"}) == before + 1
    assert " GET /v1/pay 500 " in stream.getvalue()
