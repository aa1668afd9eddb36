"""Sandbox emulators (coffee_payment.sandbox): wire formats, checkout, notifications, faults, control API."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from coffee_payment.payments.providers.tbank_token import tbank_token, tbank_token_valid
from coffee_payment.sandbox import defaults
from coffee_payment.sandbox.app import create_app
from coffee_payment.sandbox.config import ConfigError
from coffee_payment.sandbox.state import SandboxState
from devtools.launch import free_port, wait_http_ok

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]

SANDBOX = "http://sandbox.test"
YK = defaults.YOOKASSA_PREFIX
TB = defaults.TBANK_PREFIX
TM = defaults.TMETR_PREFIX
YK_AUTH = (defaults.YOOKASSA_SHOP_ID, defaults.YOOKASSA_SECRET_KEY)
TM_HEADERS = {"Authorization": f"Bearer {defaults.TMETR_TOKEN}"}
RETURN_URL = "http://shop.test/v1/order-status-page?order_id=42"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Receiver:
    """Our server's webhook endpoints, as seen by the sandbox: records every notification."""

    received: list[tuple[str, Any]] = field(default_factory=list)
    status_code: int = 200

    async def endpoint(self, request: Request) -> Response:
        self.received.append((request.url.path, await request.json()))
        body = "OK" if request.url.path == "/v1/tbank-webhook" else ""
        return PlainTextResponse(body, status_code=self.status_code)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.endpoint, methods=["POST"])])

    def bodies(self, path: str) -> list[Any]:
        return [body for received_path, body in self.received if received_path == path]


@dataclass
class Sandbox:
    client: httpx.AsyncClient
    state: SandboxState
    receiver: Receiver


@contextlib.asynccontextmanager
async def sandbox(config: dict[str, Any] | None = None) -> AsyncIterator[Sandbox]:
    receiver = Receiver()
    config = {"webhook_base": "http://ours.test", **(config or {})}
    app = create_app(config, notify_transport=httpx.ASGITransport(receiver.app()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=SANDBOX) as client:
        try:
            yield Sandbox(client, app.state.sandbox, receiver)
        finally:
            await app.state.sandbox.aclose()


def yk_body(value: str = "150.00", **extra: Any) -> dict[str, Any]:
    return {
        "amount": {"value": value, "currency": "RUB"},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": RETURN_URL},
        "description": "Капучино 0.3",
        "metadata": {"order_id": "42"},
        **extra,
    }


async def yk_create(sb: Sandbox, key: str = "key-1", body: dict[str, Any] | None = None) -> httpx.Response:
    return await sb.client.post(f"{YK}payments", json=body or yk_body(), auth=YK_AUTH, headers={"Idempotence-Key": key})


def signed(fields: dict[str, Any]) -> dict[str, Any]:
    body = {"TerminalKey": defaults.TBANK_TERMINAL_KEY, **fields}
    body["Token"] = tbank_token(body, defaults.TBANK_PASSWORD)
    return body


def init_body(order_id: str = "order-1", amount: int = 15000) -> dict[str, Any]:
    return signed(
        {
            "Amount": amount,
            "OrderId": order_id,
            "Description": "Латте",
            "NotificationURL": "http://ours.test/v1/tbank-webhook",
            "SuccessURL": "http://shop.test/success",
            "FailURL": "http://shop.test/fail",
            "PayType": "O",
            "DATA": {"Phone": "+70000000000"},
        }
    )


async def tb_call(sb: Sandbox, method: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await sb.client.post(f"{TB}{method}", json=body)
    assert response.status_code == 200
    return response.json()


def path_of(url: str) -> str:
    return httpx.URL(url).path


# --- YooKassa --------------------------------------------------------------------------------------------


async def test_yookassa_create_get_and_idempotency() -> None:
    async with sandbox() as sb:
        created = await yk_create(sb)
        assert created.status_code == 200
        payment = created.json()
        assert payment["status"] == "pending" and payment["paid"] is False and payment["test"] is True
        assert payment["amount"] == {"value": "150.00", "currency": "RUB"}
        assert payment["metadata"] == {"order_id": "42"}
        assert payment["created_at"].endswith("Z")
        assert payment["confirmation"]["confirmation_url"] == (f"{SANDBOX}/_sandbox/checkout/yookassa/{payment['id']}")

        fetched = await sb.client.get(f"{YK}payments/{payment['id']}", auth=YK_AUTH)
        assert fetched.status_code == 200 and fetched.json() == payment

        replay = await yk_create(sb)
        assert replay.json()["id"] == payment["id"]
        assert len(sb.state.yookassa_payments) == 1

        other = await yk_create(sb, body=yk_body("151.00"))
        assert other.status_code == 400 and other.json()["type"] == "error"

        assert (await yk_create(sb, key="key-2")).json()["id"] != payment["id"]

        missing = await sb.client.get(f"{YK}payments/unknown", auth=YK_AUTH)
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_yookassa_auth_and_validation_errors() -> None:
    async with sandbox() as sb:
        bad_auth = await sb.client.post(
            f"{YK}payments", json=yk_body(), auth=("100500", "wrong"), headers={"Idempotence-Key": "k"}
        )
        assert bad_auth.status_code == 401
        assert bad_auth.json()["code"] == "invalid_credentials" and bad_auth.json()["type"] == "error"
        assert (await sb.client.get(f"{YK}payments/x")).status_code == 401

        no_key = await sb.client.post(f"{YK}payments", json=yk_body(), auth=YK_AUTH)
        assert no_key.status_code == 400

        for value in ["150", "150.5", "0.00", "1e3"]:
            error = (await yk_create(sb, key=value, body=yk_body(value))).json()
            assert (error["code"], error["parameter"]) == ("invalid_request", "amount.value")
        usd = yk_body()
        usd["amount"]["currency"] = "USD"
        assert (await yk_create(sb, key="usd", body=usd)).json()["parameter"] == "amount.currency"
        assert not sb.state.yookassa_payments


async def test_yookassa_checkout_pay_redirects_and_notifies() -> None:
    async with sandbox() as sb:
        payment = (await yk_create(sb)).json()
        page_url = payment["confirmation"]["confirmation_url"]

        page = await sb.client.get(page_url)
        assert page.status_code == 200
        assert "150.00" in page.text and "Капучино 0.3" in page.text
        assert 'id="pay"' in page.text and 'id="decline"' in page.text and 'method="post"' in page.text

        paid = await sb.client.post(page_url, data={"action": "pay"})
        assert paid.status_code == 303 and paid.headers["location"] == RETURN_URL

        [notification] = sb.receiver.bodies("/v1/yook-pay-webhook")
        assert notification["type"] == "notification" and notification["event"] == "payment.succeeded"
        assert notification["object"]["id"] == payment["id"]
        assert notification["object"]["paid"] is True
        assert notification["object"]["metadata"] == {"order_id": "42"}

        current = (await sb.client.get(f"{YK}payments/{payment['id']}", auth=YK_AUTH)).json()
        assert current["status"] == "succeeded" and current["captured_at"]

        again = await sb.client.post(page_url, data={"action": "pay"})
        assert again.status_code == 409
        assert 'id="pay"' not in (await sb.client.get(page_url)).text

        [delivery] = (await sb.client.get("/_sandbox/deliveries")).json()
        assert delivery["event"] == "payment.succeeded" and delivery["http_status"] == 200 and delivery["ok"]


async def test_checkout_speaks_the_browsers_language() -> None:
    async with sandbox() as sb:
        page_url = (await yk_create(sb)).json()["confirmation"]["confirmation_url"]
        ru = (await sb.client.get(page_url)).text
        assert '<html lang="ru">' in ru and ">Оплатить</button>" in ru and ">Отклонить</button>" in ru
        en = (await sb.client.get(page_url, headers={"Accept-Language": "en-US,en;q=0.9,ru;q=0.8"})).text
        assert '<html lang="en">' in en and ">Pay</button>" in en and ">Decline</button>" in en


async def test_yookassa_checkout_decline_and_bad_action() -> None:
    async with sandbox() as sb:
        payment = (await yk_create(sb)).json()
        page_url = payment["confirmation"]["confirmation_url"]
        assert (await sb.client.post(page_url, data={"action": "steal"})).status_code == 400

        declined = await sb.client.post(page_url, data={"action": "decline"})
        assert declined.status_code == 303 and declined.headers["location"] == RETURN_URL
        [notification] = sb.receiver.bodies("/v1/yook-pay-webhook")
        assert notification["event"] == "payment.canceled"
        assert notification["object"]["cancellation_details"]["reason"]
        assert (await sb.client.get(f"{SANDBOX}/_sandbox/checkout/yookassa/nope")).status_code == 404


async def test_yookassa_refund_notifies_refund_succeeded() -> None:
    async with sandbox() as sb:
        payment = (await yk_create(sb)).json()
        await sb.client.post(payment["confirmation"]["confirmation_url"], data={"action": "pay"})
        body = {"payment_id": payment["id"], "amount": {"value": "150.00", "currency": "RUB"}}
        headers = {"Idempotence-Key": "refund-1"}
        refund = await sb.client.post(f"{YK}refunds", json=body, auth=YK_AUTH, headers=headers)
        assert refund.status_code == 200
        assert refund.json()["status"] == "succeeded" and refund.json()["payment_id"] == payment["id"]
        replay = await sb.client.post(f"{YK}refunds", json=body, auth=YK_AUTH, headers=headers)
        assert replay.json()["id"] == refund.json()["id"]
        await sb.state.wait_idle()

        events = [n["event"] for n in sb.receiver.bodies("/v1/yook-pay-webhook")]
        assert events == ["payment.succeeded", "refund.succeeded"]
        refund_object = sb.receiver.bodies("/v1/yook-pay-webhook")[1]["object"]
        assert refund_object["payment_id"] == payment["id"] and "metadata" not in refund_object

        more = await sb.client.post(f"{YK}refunds", json=body, auth=YK_AUTH, headers={"Idempotence-Key": "r2"})
        assert more.status_code == 400


async def test_yookassa_faults_500_reject_timeout() -> None:
    async with sandbox({"faults": {"yookassa.create": "500"}, "timeout_seconds": 0.2}) as sb:
        failed = await yk_create(sb)
        assert failed.status_code == 500 and failed.json()["type"] == "error"
        assert not sb.state.yookassa_payments

        await sb.client.post("/_sandbox/config", json={"faults": {"yookassa.create": "reject"}})
        assert (await yk_create(sb)).status_code == 400
        assert not sb.state.yookassa_payments

        await sb.client.post("/_sandbox/config", json={"faults": {"yookassa.create": "timeout"}})
        started = time.monotonic()
        slow = await yk_create(sb)
        assert time.monotonic() - started >= 0.2
        assert slow.status_code == 200 and len(sb.state.yookassa_payments) == 1

        await sb.client.post("/_sandbox/config", json={"faults": {"yookassa.create": None, "yookassa.get": "500"}})
        assert (await yk_create(sb)).json()["id"] == slow.json()["id"]  # the same key finds the payment
        assert (await sb.client.get(f"{YK}payments/{slow.json()['id']}", auth=YK_AUTH)).status_code == 500


async def test_yookassa_duplicate_and_out_of_order_notifications() -> None:
    async with sandbox({"notifications": {"duplicate": 2, "out_of_order": True}}) as sb:
        payment = (await yk_create(sb)).json()
        await sb.client.post(payment["confirmation"]["confirmation_url"], data={"action": "pay"})
        events = [n["event"] for n in sb.receiver.bodies("/v1/yook-pay-webhook")]
        assert events == ["payment.succeeded"] * 2 + ["payment.waiting_for_capture"] * 2
        assert sb.receiver.bodies("/v1/yook-pay-webhook")[-1]["object"]["status"] == "waiting_for_capture"


# --- TBank -----------------------------------------------------------------------------------------------


async def test_tbank_init_get_state_and_tokens() -> None:
    async with sandbox() as sb:
        init = await tb_call(sb, "Init", init_body())
        assert init["Success"] is True and init["ErrorCode"] == "0" and init["Status"] == "NEW"
        assert isinstance(init["PaymentId"], str) and init["PaymentId"].isdigit()
        assert (init["OrderId"], init["Amount"]) == ("order-1", 15000)
        assert init["PaymentURL"] == f"{SANDBOX}/_sandbox/checkout/tbank/{init['PaymentId']}"

        state = await tb_call(sb, "GetState", signed({"PaymentId": init["PaymentId"]}))
        assert (state["Success"], state["Status"]) == (True, "NEW")
        assert state["PaymentId"] == init["PaymentId"]
        assert (state["OrderId"], state["Amount"]) == ("order-1", 15000)

        forged = signed({"PaymentId": init["PaymentId"]})
        forged["Token"] = "0" * 64
        error = await tb_call(sb, "GetState", forged)
        assert error["Success"] is False and error["ErrorCode"] == "204"
        assert "PaymentId" not in error and "Status" not in error

        other_terminal = {"TerminalKey": "OtherTerminal", "PaymentId": init["PaymentId"]}
        other_terminal["Token"] = tbank_token(other_terminal, defaults.TBANK_PASSWORD)
        assert (await tb_call(sb, "GetState", other_terminal))["ErrorCode"] == "204"

        duplicate = await tb_call(sb, "Init", init_body())
        assert duplicate["Success"] is False and duplicate["ErrorCode"] == "8"
        bad_amount = await tb_call(sb, "Init", init_body(order_id="order-2", amount=0))
        assert bad_amount["Success"] is False
        too_long = await tb_call(sb, "Init", init_body(order_id="x" * 37))
        assert too_long["Success"] is False


async def test_tbank_checkout_pay_sends_signed_authorized_then_confirmed() -> None:
    async with sandbox() as sb:
        init = await tb_call(sb, "Init", init_body())
        page = await sb.client.get(init["PaymentURL"])
        assert page.status_code == 200 and "150.00" in page.text and "Латте" in page.text
        shown = await tb_call(sb, "GetState", signed({"PaymentId": init["PaymentId"]}))
        assert shown["Status"] == "FORM_SHOWED"

        paid = await sb.client.post(init["PaymentURL"], data={"action": "pay"})
        assert paid.status_code == 303 and paid.headers["location"] == "http://shop.test/success"

        notifications = sb.receiver.bodies("/v1/tbank-webhook")
        assert [n["Status"] for n in notifications] == ["AUTHORIZED", "CONFIRMED"]
        for notification in notifications:
            assert tbank_token_valid(notification, defaults.TBANK_PASSWORD)
            assert notification["PaymentId"] == int(init["PaymentId"])
            assert notification["Success"] is True and notification["ErrorCode"] == "0"
            assert notification["Amount"] == 15000 and notification["OrderId"] == "order-1"
            assert isinstance(notification["CardId"], int) and isinstance(notification["Data"], dict)

        deliveries = (await sb.client.get("/_sandbox/deliveries")).json()
        assert [(d["status"], d["response_body"], d["ok"]) for d in deliveries] == [
            ("AUTHORIZED", "OK", True),
            ("CONFIRMED", "OK", True),
        ]
        final = await tb_call(sb, "GetState", signed({"PaymentId": init["PaymentId"]}))
        assert final["Status"] == "CONFIRMED"


async def test_tbank_decline_and_out_of_order() -> None:
    async with sandbox({"notifications": {"out_of_order": True}}) as sb:
        declined = await tb_call(sb, "Init", init_body("declined"))
        response = await sb.client.post(declined["PaymentURL"], data={"action": "decline"})
        assert response.status_code == 303 and response.headers["location"] == "http://shop.test/fail"
        [rejected] = sb.receiver.bodies("/v1/tbank-webhook")
        assert (rejected["Status"], rejected["Success"], rejected["ErrorCode"]) == ("REJECTED", False, "1051")
        assert tbank_token_valid(rejected, defaults.TBANK_PASSWORD)

        paid = await tb_call(sb, "Init", init_body("paid"))
        await sb.client.post(paid["PaymentURL"], data={"action": "pay"})
        statuses = [n["Status"] for n in sb.receiver.bodies("/v1/tbank-webhook")[1:]]
        assert statuses == ["CONFIRMED", "AUTHORIZED"]


async def test_tbank_check_order_and_cancel() -> None:
    async with sandbox() as sb:
        empty = await tb_call(sb, "CheckOrder", signed({"OrderId": "nothing"}))
        assert empty["Success"] is True and empty["Payments"] == []

        init = await tb_call(sb, "Init", init_body())
        checked = await tb_call(sb, "CheckOrder", signed({"OrderId": "order-1"}))
        assert checked["OrderId"] == "order-1"
        assert checked["Payments"] == [
            {
                "PaymentId": init["PaymentId"],
                "Amount": 15000,
                "Status": "NEW",
                "Success": True,
                "ErrorCode": "0",
            }
        ]

        await sb.client.post(init["PaymentURL"], data={"action": "pay"})
        cancel = await tb_call(sb, "Cancel", signed({"PaymentId": init["PaymentId"]}))
        assert cancel["Success"] is True and cancel["Status"] == "REFUNDED"
        await sb.state.wait_idle()
        assert sb.receiver.bodies("/v1/tbank-webhook")[-1]["Status"] == "REFUNDED"
        assert (await tb_call(sb, "Cancel", signed({"PaymentId": init["PaymentId"]})))["Success"] is False


async def test_api_calls_are_counted_per_operation_and_reset() -> None:
    async with sandbox({"faults": {"tbank.get_state": "500"}}) as sb:
        init = await tb_call(sb, "Init", init_body())
        for _ in range(3):
            await sb.client.post(f"{TB}GetState", json=signed({"PaymentId": init["PaymentId"]}))  # faulted, counted
        await tb_call(sb, "Cancel", signed({"PaymentId": init["PaymentId"]}))
        await yk_create(sb)
        calls = (await sb.client.get("/_sandbox/api-calls")).json()
        assert calls == {"tbank.init": 1, "tbank.get_state": 3, "tbank.cancel": 1, "yookassa.create": 1}
        await sb.client.post("/_sandbox/reset")
        assert (await sb.client.get("/_sandbox/api-calls")).json() == {}


async def test_tbank_faults() -> None:
    async with sandbox({"faults": {"tbank.init": "reject"}, "timeout_seconds": 0.1}) as sb:
        rejected = await sb.client.post(f"{TB}Init", json=init_body())
        assert rejected.status_code == 200
        assert rejected.json()["Success"] is False and rejected.json()["ErrorCode"] == "9999"
        assert "PaymentId" not in rejected.json() and not sb.state.tbank_payments

        await sb.client.post("/_sandbox/config", json={"faults": {"tbank.init": "500"}})
        assert (await sb.client.post(f"{TB}Init", json=init_body())).status_code == 500
        assert not sb.state.tbank_payments

        await sb.client.post("/_sandbox/config", json={"faults": {"tbank.init": "timeout"}})
        assert (await tb_call(sb, "Init", init_body()))["Success"] is True
        await sb.client.post("/_sandbox/config", json={"faults": {"tbank.init": None, "tbank.get_state": "500"}})
        checked = await tb_call(sb, "CheckOrder", signed({"OrderId": "order-1"}))
        assert len(checked["Payments"]) == 1
        payment_id = checked["Payments"][0]["PaymentId"]
        get_state = await sb.client.post(f"{TB}GetState", json=signed({"PaymentId": payment_id}))
        assert get_state.status_code == 500


async def test_tbank_failed_delivery_is_recorded() -> None:
    async with sandbox() as sb:
        sb.receiver.status_code = 500
        init = await tb_call(sb, "Init", init_body())
        await sb.client.post(init["PaymentURL"], data={"action": "pay"})
        deliveries = (await sb.client.get("/_sandbox/deliveries")).json()
        assert [(d["http_status"], d["ok"]) for d in deliveries] == [(500, False), (500, False)]

        sb.receiver.status_code = 200
        resent = await sb.client.post(f"/_sandbox/payments/tbank/{init['PaymentId']}/notify")
        assert [(d["status"], d["ok"]) for d in resent.json()] == [("CONFIRMED", True)]


async def test_unreachable_webhook_is_recorded_not_raised() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    app = create_app(notify_transport=httpx.MockTransport(refuse))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=SANDBOX) as client:
        payment = (
            await client.post(f"{YK}payments", json=yk_body(), auth=YK_AUTH, headers={"Idempotence-Key": "k"})
        ).json()
        paid = await client.post(payment["confirmation"]["confirmation_url"], data={"action": "pay"})
        assert paid.status_code == 303
        [delivery] = (await client.get("/_sandbox/deliveries")).json()
        assert delivery["url"] == "http://127.0.0.1:8000/v1/yook-pay-webhook"
        assert delivery["http_status"] is None and "ConnectError" in delivery["error"]
    await app.state.sandbox.aclose()


async def test_auto_pay_settles_both_providers() -> None:
    async with sandbox({"auto_pay": True, "auto_pay_delay_ms": 10}) as sb:
        payment = (await yk_create(sb)).json()
        init = await tb_call(sb, "Init", init_body())
        assert payment["status"] == "pending" and init["Status"] == "NEW"
        await sb.state.wait_idle()

        current = (await sb.client.get(f"{YK}payments/{payment['id']}", auth=YK_AUTH)).json()
        assert current["status"] == "succeeded"
        tb_state = await tb_call(sb, "GetState", signed({"PaymentId": init["PaymentId"]}))
        assert tb_state["Status"] == "CONFIRMED"
        assert [n["event"] for n in sb.receiver.bodies("/v1/yook-pay-webhook")] == ["payment.succeeded"]
        assert [n["Status"] for n in sb.receiver.bodies("/v1/tbank-webhook")] == ["AUTHORIZED", "CONFIRMED"]
        page = await sb.client.get(payment["confirmation"]["confirmation_url"])
        assert page.status_code == 200 and "succeeded" in page.text and 'id="pay"' not in page.text


# --- Tmetr -----------------------------------------------------------------------------------------------


async def test_tmetr_price_default_configured_and_missing() -> None:
    prices = [
        {"deviceId": "dev-1", "price": 9900},
        {"deviceId": "dev-1", "drinkIdAtDevice": "7", "drinkSize": "BIG", "price": 25000, "name": "Латте"},
        {"deviceId": "dev-1", "drinkIdAtDevice": "8", "price": None},
    ]
    async with sandbox({"prices": prices}) as sb:

        async def price(device: str, drink: str, size: str) -> httpx.Response:
            body = {"deviceId": device, "drinkIdAtDevice": drink, "drinkSize": size}
            return await sb.client.post(f"{TM}api/ui/v1/static/drink", json=body, headers=TM_HEADERS)

        default = (await price("dev-2", "1", "SMALL")).json()
        assert default["price"] == defaults.DEFAULT_PRICE_KOPECKS and default["drinkSize"] == "SMALL"
        assert (await price("dev-1", "1", "SMALL")).json()["price"] == 9900
        exact = (await price("dev-1", "7", "BIG")).json()
        assert (exact["price"], exact["name"]) == (25000, "Латте")
        assert (await price("dev-1", "7", "MEDIUM")).json()["price"] == 9900
        missing = await price("dev-1", "8", "SMALL")
        assert missing.status_code == 200 and "price" not in missing.json()

        assert (await price("dev-1", "7", "HUGE")).status_code == 400
        unauthorized = await sb.client.post(f"{TM}api/ui/v1/static/drink", json={})
        assert unauthorized.status_code == 401 and unauthorized.json()["errorCode"] == "UNAUTHORIZED"
        assert set(unauthorized.json()) == {"errorCode", "errorId", "errorMessage"}


async def test_tmetr_heartbeat_offline_device_is_two_hours_old() -> None:
    async with sandbox({"offline_devices": ["dev-off"]}) as sb:

        async def heartbeat(device: str) -> dict[str, Any]:
            response = await sb.client.post(
                f"{TM}api/ui/v1/stat/heartbeat/recent",
                json={"deviceIds": [device], "offset": 0, "limit": 1},
                headers={**TM_HEADERS, "X-TimeZoneOffset": "0"},
            )
            assert response.status_code == 200
            return response.json()

        now = time.time()
        online = await heartbeat("dev-on")
        assert (online["totalElements"], online["offset"], online["limit"]) == (1, 0, 1)
        [entry] = online["content"]
        assert entry["deviceId"] == "dev-on" and entry["deviceIotName"]
        assert abs(entry["heartbeatCreatedAt"] - now) < 5
        offline = (await heartbeat("dev-off"))["content"][0]["heartbeatCreatedAt"]
        assert 2 * 3600 - 5 < now - offline < 2 * 3600 + 5


async def test_tmetr_make_is_recorded() -> None:
    async with sandbox({"timeout_seconds": 0.05}) as sb:
        command = {
            "deviceId": "dev-1",
            "orderUuid": "o-1",
            "drinkUuid": "7",
            "size": "medium",
            "price": 15000,
        }
        url = f"{TM}api/commander/v1/command/make"
        accepted = await sb.client.post(url, json=[command], headers=TM_HEADERS)
        assert accepted.status_code == 200
        assert (await sb.client.post(url, json=command, headers=TM_HEADERS)).status_code == 400
        incomplete = {key: value for key, value in command.items() if key != "price"}
        assert (await sb.client.post(url, json=[incomplete], headers=TM_HEADERS)).status_code == 400
        assert (await sb.client.post(url, json=[command])).status_code == 401

        await sb.client.post("/_sandbox/config", json={"faults": {"tmetr.make": "500"}})
        assert (await sb.client.post(url, json=[command], headers=TM_HEADERS)).status_code == 500
        await sb.client.post("/_sandbox/config", json={"faults": {"tmetr.make": "timeout"}})
        assert (await sb.client.post(url, json=[command], headers=TM_HEADERS)).status_code == 200

        makes = (await sb.client.get("/_sandbox/tmetr/makes")).json()
        assert len(makes) == 2  # the accepted one and the "timeout" one (performed, answered late)
        assert {key: makes[0][key] for key in command} == command and makes[0]["received_at"]


# --- Latency and control ---------------------------------------------------------------------------------


async def test_latency_is_per_service_and_skips_control() -> None:
    async with sandbox({"latency_ms": {"tmetr": 200}}) as sb:
        started = time.monotonic()
        await sb.client.post(f"{TM}api/ui/v1/static/drink", json={}, headers=TM_HEADERS)
        assert time.monotonic() - started >= 0.2
        started = time.monotonic()
        await tb_call(sb, "CheckOrder", signed({"OrderId": "x"}))
        await sb.client.get("/_sandbox/config")
        assert time.monotonic() - started < 0.2


async def test_control_config_reset_and_payments() -> None:
    async with sandbox({"auto_pay_delay_ms": 5}) as sb:
        config = (await sb.client.get("/_sandbox/config")).json()
        assert config["webhook_base"] == "http://ours.test" and config["faults"] == {}

        updated = await sb.client.post(
            "/_sandbox/config", json={"faults": {"tmetr.price": "500"}, "notifications": {"duplicate": 3}}
        )
        assert updated.json()["faults"] == {"tmetr.price": "500"}
        assert updated.json()["notifications"]["duplicate"] == 3
        for bad in [{"nope": 1}, {"faults": {"yookassa.create": "explode"}}, {"latency_ms": -1}, [1]]:
            assert (await sb.client.post("/_sandbox/config", json=bad)).status_code == 400

        await yk_create(sb)
        await tb_call(sb, "Init", init_body())
        listed = (await sb.client.get("/_sandbox/payments")).json()
        assert len(listed["yookassa"]) == 1 and len(listed["tbank"]) == 1

        assert (await sb.client.post("/_sandbox/reset")).status_code == 200
        assert (await sb.client.get("/_sandbox/payments")).json() == {"yookassa": [], "tbank": []}
        assert (await sb.client.get("/_sandbox/config")).json() == config
        assert (await sb.client.get("/health")).text == "ok"


def test_create_app_rejects_invalid_config() -> None:
    with pytest.raises(ConfigError):
        create_app({"faults": {"unknown.op": "500"}})


# --- CLI -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_and_exits_cleanly_on_signal(sig: signal.Signals) -> None:
    port = free_port()
    env = {**os.environ, "SANDBOX_AUTO_PAY": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coffee_payment.sandbox",
            "--port",
            str(port),
            "--webhook-base",
            "http://x.test",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/_sandbox/config", timeout=10, proc=process)
        config = httpx.get(f"http://127.0.0.1:{port}/_sandbox/config", timeout=1).json()
        assert config["auto_pay"] is True and config["webhook_base"] == "http://x.test"
        process.send_signal(sig)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
