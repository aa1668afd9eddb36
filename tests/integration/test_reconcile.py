"""Missed notifications: the status page's on-demand refresh and the reconcile_payments command recover them."""

from __future__ import annotations

import pytest

from devtools.stack import run_manage
from tests.integration.flow import checkout, initiate, scan_with_uuid, status, wait_makes, wait_status

pytestmark = pytest.mark.timeout(90)

NOWHERE = "http://127.0.0.1:9"  # discard port: notification deliveries fail


def test_reconcile_payments_applies_a_missed_success(stack, app, sandbox):
    sandbox.post("/_sandbox/config", json={"webhook_base": NOWHERE}).raise_for_status()
    order_id, machine_uuid = scan_with_uuid(app, "yookassa")
    checkout(initiate(app, order_id), "pay")
    out = run_manage("reconcile_payments", "--min-age", "0", env=stack.env)
    assert "make_pending" in out
    assert status(app, order_id)["status"] == "make_pending"
    assert len(wait_makes(sandbox, machine_uuid)) == 1
    # A second run finds nothing pending and sends nothing.
    assert "reconciled 0/0" in run_manage("reconcile_payments", "--min-age", "0", env=stack.env)
    assert len(wait_makes(sandbox, machine_uuid)) == 1


def test_status_json_refreshes_a_stale_pending_payment(stack, app, sandbox):
    sandbox.post("/_sandbox/config", json={"webhook_base": NOWHERE}).raise_for_status()
    order_id, machine_uuid = scan_with_uuid(app, "yookassa")
    checkout(initiate(app, order_id), "pay")
    # PAYMENT_REFRESH_INTERVAL_S=1 in the test stack: polling the JSON makes the server ask the provider.
    wait_status(app, order_id, "make_pending", timeout=15)
    assert len(wait_makes(sandbox, machine_uuid)) == 1
