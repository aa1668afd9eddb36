"""The customer flow over real HTTP: gunicorn (2 Uvicorn workers) + the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from coffee_payment.payments.providers.tbank_token import tbank_token
from coffee_payment.sandbox import defaults as sandbox_defaults
from devtools.stack import Stack, run_manage
from tests.integration.flow import (
    DEVICES,
    checkout,
    initiate,
    makes_for,
    provider_payments,
    scan,
    scan_with_uuid,
    status,
    wait_deliveries,
    wait_makes,
    wait_status,
)

pytestmark = pytest.mark.timeout(90)


def shell(stack: Stack, code: str) -> str:
    """Run Python inside the server's Django (same env and database) — for setup and for inspecting rows."""
    return run_manage("shell", "--no-imports", "-c", code, env=stack.env).strip()


@pytest.mark.parametrize("provider", ["yookassa", "tbank"])
def test_whole_flow_makes_one_drink(stack, app, sandbox, provider):
    order_id, machine_uuid = scan_with_uuid(app, provider)
    page = app.get(f"/v1/order-status-page?order_id={order_id}")
    assert page.status_code == 200 and 'id="pay"' in page.text
    body = status(app, order_id)
    assert body["status"] == "created" and body["price"] == "150.00" and body["payment_scenario"] == provider
    url = initiate(app, order_id)
    assert status(app, order_id)["status"] == "pending"
    paid = checkout(url, "pay")
    assert paid.status_code == 303
    assert paid.headers["location"] == f"{stack.base_url}/v1/order-status-page?order_id={order_id}"
    wait_status(app, order_id, "make_pending")
    makes = wait_makes(sandbox, machine_uuid)
    assert len(makes) == 1
    device = DEVICES[provider]
    assert makes[0] | {"received_at": None} == {
        "deviceId": device.tmetr_device_id,
        "orderUuid": machine_uuid,
        "drinkUuid": device.drink_no,
        "size": "medium",
        "price": 15000,
        "received_at": None,
    }


@pytest.mark.parametrize("provider", ["yookassa", "tbank"])
def test_decline_then_pay_again(stack, app, sandbox, provider):
    order_id, machine_uuid = scan_with_uuid(app, provider)
    first = initiate(app, order_id)
    assert checkout(first, "decline").status_code == 303
    body = wait_status(app, order_id, "not_paid")
    assert body["can_pay"] is True
    second = initiate(app, order_id)
    assert second != first
    checkout(second, "pay")
    wait_status(app, order_id, "make_pending")
    assert len(wait_makes(sandbox, machine_uuid)) == 1


def test_rescan_returns_the_same_order_and_reused_uuid_is_400(stack, app, sandbox):
    order_id, machine_uuid = scan_with_uuid(app, "yookassa")
    assert scan(app, "yookassa", uuid=machine_uuid) == order_id
    other_drink = app.get(
        f"/v1/pay?deviceUuid={DEVICES['tbank'].device_uuid}&drinkNo=abc&drinkName=Tea&size=0&uuid={machine_uuid}"
    )
    assert other_drink.status_code == 400 and "уже использован" in other_drink.text  # Russian by default


@pytest.mark.parametrize("provider", ["yookassa", "tbank"])
def test_double_tap_makes_one_provider_payment(stack, app, sandbox, provider):
    sandbox.post("/_sandbox/config", json={"latency_ms": 300}).raise_for_status()
    order_id = scan(app, provider)
    with ThreadPoolExecutor(max_workers=8) as pool:
        urls = list(pool.map(lambda _: initiate(app, order_id), range(8)))
    assert len(set(urls)) == 1
    assert len(provider_payments(sandbox, provider, order_id)) == 1


@pytest.mark.parametrize("provider", ["yookassa", "tbank"])
def test_twenty_concurrent_duplicate_notifications_dispense_once(stack, app, sandbox, provider):
    sandbox.post("/_sandbox/config", json={"notifications": {"duplicate": 20, "out_of_order": True}}).raise_for_status()
    order_id, machine_uuid = scan_with_uuid(app, provider)
    checkout(initiate(app, order_id), "pay")
    # The 20 deliveries first: a status poll before them may settle the payment itself (the status JSON polls the
    # provider once the payment is older than PAYMENT_REFRESH_INTERVAL_S, 1 s here: a loaded machine delays the
    # notifications that long), and then no notification is the one applied.
    deliveries = wait_deliveries(sandbox, provider, 20)
    wait_status(app, order_id, "make_pending")
    assert all(d["http_status"] == 200 for d in deliveries), deliveries
    if provider == "tbank":
        assert all(d["response_body"] == "OK" for d in deliveries)
    assert len(wait_makes(sandbox, machine_uuid)) == 1
    applied = shell(
        stack,
        "from coffee_payment.payments.models import Notification as N;"
        f"print(N.objects.filter(attempt__order_id='{order_id}', verdict='applied').count())",
    )
    assert applied == "1"


def _tbank_payment(sandbox: httpx.Client, order_id: str) -> dict:
    (payment,) = provider_payments(sandbox, "tbank", order_id)
    return payment


def _tbank_notification(payment: dict, **fields) -> dict:
    body = {
        "TerminalKey": sandbox_defaults.TBANK_TERMINAL_KEY,
        "OrderId": payment["order_id"],
        "Success": True,
        "Status": "CONFIRMED",
        "PaymentId": int(payment["payment_id"]),
        "ErrorCode": "0",
        "Amount": payment["amount"],
        "CardId": 123,
        "Pan": "430000******0777",
        "ExpDate": "1230",
        "Data": {"Source": "cards"},
    }
    body.update(fields)
    body["Token"] = tbank_token(body, sandbox_defaults.TBANK_PASSWORD)
    return body


def test_amount_mismatch_fails_the_order_without_dispense(stack, app, sandbox):
    """The provider's (GetState's) amount differs from the order's: failed, no make."""
    order_id, machine_uuid = scan_with_uuid(app, "tbank")
    url = initiate(app, order_id)
    shell(
        stack,
        "from coffee_payment.orders.models import Order;"
        f"Order.objects.filter(pk='{order_id}').update(price_kopecks=14900)",
    )
    checkout(url, "pay")
    wait_status(app, order_id, "failed")
    assert makes_for(sandbox, machine_uuid) == []


def test_signed_confirmed_that_getstate_does_not_confirm_changes_nothing(stack, app, sandbox):
    """A correctly signed CONFIRMED (with any Amount) is a claim: GetState says the payment is still NEW."""
    order_id, machine_uuid = scan_with_uuid(app, "tbank")
    initiate(app, order_id)
    payment = _tbank_payment(sandbox, order_id)
    for amount in (payment["amount"], payment["amount"] - 100):
        response = app.post("/v1/tbank-webhook", json=_tbank_notification(payment, Amount=amount))
        assert response.status_code == 200 and response.text == "OK"
    assert status(app, order_id)["status"] == "pending"
    assert makes_for(sandbox, machine_uuid) == []


def test_tbank_bad_token_is_400_and_changes_nothing(stack, app, sandbox):
    order_id, machine_uuid = scan_with_uuid(app, "tbank")
    initiate(app, order_id)
    forged = _tbank_notification(_tbank_payment(sandbox, order_id))
    forged["Token"] = "0" * 64
    response = app.post("/v1/tbank-webhook", json=forged)
    assert response.status_code == 400
    assert status(app, order_id)["status"] == "pending"
    assert makes_for(sandbox, machine_uuid) == []


def test_forged_yookassa_notification_changes_nothing(stack, app, sandbox):
    order_id, machine_uuid = scan_with_uuid(app, "yookassa")
    initiate(app, order_id)
    (payment,) = provider_payments(sandbox, "yookassa", order_id)
    forged = {
        "type": "notification",
        "event": "payment.succeeded",
        "object": {**payment, "status": "succeeded", "paid": True},
    }
    response = app.post("/v1/yook-pay-webhook", json=forged)
    assert response.status_code == 200  # answered, but the re-fetch says pending: nothing applied
    assert status(app, order_id)["status"] == "pending"
    assert makes_for(sandbox, machine_uuid) == []
    verdict = shell(
        stack,
        "from coffee_payment.payments.models import Notification as N;"
        f"print(N.objects.filter(attempt__order_id='{order_id}').latest('id').verdict)",
    )
    assert verdict == "mismatch"
    unknown = {
        "type": "notification",
        "event": "payment.succeeded",
        "object": {**payment, "id": "2f0000aa-000f-5000-9000-1b2c3d4e5f60", "metadata": {}},
    }
    assert app.post("/v1/yook-pay-webhook", json=unknown).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"type":"notification","event":"payment.succeeded"}',
        b'{"type":"notification","event":"payment.succeeded","object":"x"}',
    ],
)
def test_malformed_yookassa_notifications_are_400(stack, app, body):
    response = app.post("/v1/yook-pay-webhook", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_success_after_expiry_is_manual_make(stack, app, sandbox):
    order_id, machine_uuid = scan_with_uuid(app, "yookassa")
    url = initiate(app, order_id)
    shell(
        stack,
        "from datetime import timedelta; from django.utils import timezone;"
        "from coffee_payment.orders.models import Order;"
        f"Order.objects.filter(pk='{order_id}').update(expires_at=timezone.now() - timedelta(seconds=1))",
    )
    checkout(url, "pay")
    wait_status(app, order_id, "manual_make")
    assert wait_makes(sandbox, machine_uuid, timeout=1) == []  # a wrong make would trail the status


def test_tmetr_timeout_on_make_is_make_failed_and_not_resent(stack, app, sandbox):
    sandbox.post("/_sandbox/config", json={"faults": {"tmetr.make": "timeout"}}).raise_for_status()
    order_id, machine_uuid = scan_with_uuid(app, "tbank")
    checkout(initiate(app, order_id), "pay")
    wait_status(app, order_id, "make_failed")
    # Re-deliver the success notification: still no second make command.
    (payment,) = provider_payments(sandbox, "tbank", order_id)
    assert sandbox.post(f"/_sandbox/payments/tbank/{payment['payment_id']}/notify").status_code == 200
    assert status(app, order_id)["status"] == "make_failed"
    assert len(wait_makes(sandbox, machine_uuid)) == 1  # recorded once by Tmetr (outcome unknown to us)


def test_missing_price_is_an_error_page_and_no_order(stack, app, sandbox):
    device = DEVICES["yookassa"]
    sandbox.post(
        "/_sandbox/config",
        json={"prices": [{"deviceId": device.tmetr_device_id, "drinkIdAtDevice": device.drink_no, "price": None}]},
    ).raise_for_status()
    machine_uuid = "it-noprice-" + order_suffix()
    response = app.get(
        f"/v1/pay?deviceUuid={device.device_uuid}&drinkNo={device.drink_no}&drinkName=X&size=1&uuid={machine_uuid}"
    )
    assert response.status_code == 502 and "Цена этого напитка" in response.text
    count = shell(
        stack,
        "from coffee_payment.orders.models import Order;"
        f"print(Order.objects.filter(machine_uuid='{machine_uuid}').count())",
    )
    assert count == "0"


def order_suffix() -> str:
    import secrets

    return secrets.token_hex(6)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "нет параметра «deviceUuid»"),
        ("deviceUuid=x&drinkNo=1&drinkName=T&size=7&uuid=u1", "неверный параметр «size»: нужно 0, 1 или 2"),
        ("deviceUuid=x&drinkNo=1&drinkName=T&size=1", "нет параметра «uuid»"),
        ("deviceUuid=bad%20id&drinkNo=1&drinkName=T&size=1&uuid=u", "неверный параметр «deviceUuid»"),
    ],
)
def test_bad_qr_parameters_are_a_400_page(stack, app, query, reason):
    response = app.get(f"/v1/pay?{query}")
    assert response.status_code == 400
    assert reason in response.text.replace("&#x27;", "'")


def test_unknown_device_is_a_404_page(stack, app):
    response = app.get("/v1/pay?deviceUuid=00000000-0000-0000-0000-000000000000&drinkNo=1&drinkName=T&size=1&uuid=zz1")
    assert response.status_code == 404 and "Неизвестный кофейный автомат" in response.text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"nope", 400),
        (b"{}", 400),
        (json.dumps({"order_id": "not-a-uuid"}).encode(), 404),
        (json.dumps({"order_id": "0c6f4b8e-7a39-4a8e-9c1e-3f2d5b6a7c8d"}).encode(), 404),
    ],
)
def test_initiate_payment_bad_bodies(stack, app, body, expected):
    response = app.post("/v1/initiate-payment", content=body, headers={"content-type": "application/json"})
    assert response.status_code == expected and "error" in response.json()


def test_health_answers_any_host(stack, app):
    response = app.get("/health", headers={"Host": "10.1.2.3:8000"})
    assert response.status_code == 200
    assert app.get("/v1/order-status/whatever", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.parametrize("object_id", ["../refunds/abc", "a/b", "x?y=1", "%2e%2e", "", "a" * 65, "\u0430bc"])
def test_yookassa_notification_ids_cannot_steer_the_refetch(stack, app, object_id):
    """The claimed id goes into the re-fetch URL: anything not shaped like a payment id is a 400."""
    body = {"type": "notification", "event": "payment.succeeded", "object": {"id": object_id}}
    assert app.post("/v1/yook-pay-webhook", json=body).status_code == 400


@pytest.mark.parametrize(
    "body",
    [b"[" * 20000 + b"]" * 20000, b'{"TerminalKey": "\\ud800"}', b'{"TerminalKey": "a\\u0000b"}', b"\xff"],
)
@pytest.mark.parametrize("path", ["/v1/tbank-webhook", "/v1/yook-pay-webhook", "/v1/initiate-payment"])
def test_hostile_json_is_400_not_500(stack, app, path, body):
    response = app.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_email_with_control_characters_is_400(stack, app, sandbox):
    order_id = scan(app, "yookassa")
    response = app.post("/v1/initiate-payment", json={"order_id": order_id, "email": "a@b\u0000c"})
    assert response.status_code == 400
    assert provider_payments(sandbox, "yookassa", order_id) == []
    assert status(app, order_id)["status"] == "created"


def test_get_endpoints_answer_405_to_other_methods(stack, app):
    assert app.post("/v1/pay").status_code == 405
    assert app.post("/v1/order-status/x").status_code == 405


def test_customer_paths_use_the_lean_stack_with_security_headers(stack, app):
    order_id = scan(app, "tbank")
    for path in (f"/v1/order-status/{order_id}", f"/v1/order-status-page?order_id={order_id}"):
        response = app.get(path)
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert "set-cookie" not in response.headers  # no session/CSRF machinery on the customer paths
    assert app.get(f"/v1/order-status/{order_id}", headers={"Host": "evil.example"}).status_code == 400
    admin = app.get("/admin/login/")
    assert admin.status_code == 200 and "csrftoken" in admin.headers.get("set-cookie", "")
