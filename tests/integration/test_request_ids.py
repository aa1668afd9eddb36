"""One payment followed through every hop by its request ids: our response, our logs, the sandbox's record of each
provider call — and the payment, notification, dispense and outbound metrics it moved (gunicorn, 2 workers)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.processes import free_port, wait_until
from devtools.stack import Stack, StackConfig
from tests.integration.flow import checkout, qr_path, wait_makes, wait_status
from tests.integration.test_monitoring import value

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("var-request-ids")
    env = {"GUNICORN_WORKERS": "2", "METRICS_PORT": str(free_port())}
    with Stack(StackConfig(mode="prod", var_dir=var_dir, env=env, log_to=var_dir / "logs")) as running:
        yield running


def _calls(stack: Stack, request_id: str) -> list[dict]:
    return httpx.get(f"{stack.sandbox_url}/_sandbox/calls", params={"request_id": request_id}, timeout=5).json()


def _server_log(stack: Stack) -> str:
    return (stack.config.log_to / "server.log").read_text(errors="replace")


def _scrape(stack: Stack) -> dict:
    text = httpx.get(f"http://127.0.0.1:{stack.env['METRICS_PORT']}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_one_payment_followed_through_every_hop(stack):
    scan_id, pay_id = f"scan-{secrets.token_hex(6)}", f"pay-{secrets.token_hex(6)}"
    machine_uuid = "it" + secrets.token_hex(10)
    with httpx.Client(base_url=stack.base_url, timeout=30) as app:
        scanned = app.get(qr_path("yookassa", uuid=machine_uuid), headers={"X-Request-ID": scan_id})
        assert scanned.status_code == 302 and scanned.headers["x-request-id"] == scan_id
        order_id = scanned.headers["location"].split("order_id=", 1)[1]
        assert {c["service"] for c in _calls(stack, scan_id)} == {"tmetr"}  # heartbeat and price

        started = app.post("/v1/initiate-payment", json={"order_id": order_id}, headers={"X-Request-ID": pay_id})
        assert started.status_code == 200 and started.headers["x-request-id"] == pay_id
        created = _calls(stack, pay_id)
        assert [(c["service"], c["method"], c["path"]) for c in created] == [
            ("yookassa", "POST", "/yookassa/v3/payments")
        ]

        checkout(started.json()["redirect_url"], "pay")
        wait_status(app, order_id, "make_pending")
    with httpx.Client(base_url=stack.sandbox_url, timeout=10) as sandbox:
        assert len(wait_makes(sandbox, machine_uuid)) == 1

    # The notification came from the sandbox without an id: our server gave it one and carried it onward.
    all_calls = httpx.get(f"{stack.sandbox_url}/_sandbox/calls", timeout=5).json()
    make = [c for c in all_calls if c["path"].endswith("/command/make")]
    webhook_id = make[-1]["request_id"]
    assert webhook_id and re.fullmatch(r"[0-9a-f]{32}", webhook_id)
    hops = [(c["service"], c["method"]) for c in _calls(stack, webhook_id)]
    assert hops == [("yookassa", "GET"), ("tmetr", "POST")]  # re-fetch of the payment, then the make command

    log = wait_until(
        lambda: f"request_id={webhook_id} pid=" in _server_log(stack) and _server_log(stack),
        timeout=10,
        what="webhook access line",
    )
    assert re.search(rf"POST /v1/yook-pay-webhook 200 .* request_id={webhook_id} pid=\d+", log)
    app_lines = [line for line in log.splitlines() if f"request_id={webhook_id}:" in line]
    assert any("notification" in line and "applied" in line for line in app_lines), app_lines
    assert any("dispense.accepted" in line for line in app_lines), app_lines  # the durable make, same id
    assert re.search(rf"POST /v1/initiate-payment 200 .* request_id={pay_id} pid=\d+", log)

    samples = _scrape(stack)
    assert value(samples, "coffee_dispenses_total", outcome="sent") == 1
    assert value(samples, "coffee_dispenses_total", outcome="accepted") == 1
    assert value(samples, "coffee_notifications_total", provider="yookassa", verdict="applied") == 1
    assert value(samples, "coffee_payments_total", provider="yookassa") >= 1
    assert value(samples, "coffee_outbound_request_duration_seconds_count", service="tmetr", operation="make") == 1
    assert (
        value(samples, "coffee_outbound_request_duration_seconds_count", service="yookassa", operation="create_payment")
        == 1
    )
