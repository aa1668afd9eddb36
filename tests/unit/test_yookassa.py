"""YooKassa status map, notification parsing and the client's wire format / error mapping (docs/domain.md §3)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from coffee_payment.orders.state import PaymentOutcome
from coffee_payment.payments.providers.base import (
    InvalidNotification,
    PaymentRequest,
    ProviderError,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
)
from coffee_payment.payments.providers.yookassa import YooKassaClient, map_status, parse_notification
from tests.unit.mock_http import Recorder, run, yookassa_created

pytestmark = pytest.mark.timeout(30)

# --- map_status -------------------------------------------------------------------------------------------------


def _payment(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "2d9d1c37-000f-5000-9000-1b6b0f5a3a55",
        "status": status,
        "amount": {"value": "150.00", "currency": "RUB"},
        **extra,
    }


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("pending", PaymentOutcome.PENDING),
        ("waiting_for_capture", PaymentOutcome.PENDING),
        ("succeeded", PaymentOutcome.SUCCEEDED),
        ("canceled", PaymentOutcome.CANCELED),
    ],
)
def test_map_status(status, outcome):
    assert map_status(_payment(status)) is outcome


def test_map_status_fully_refunded_is_refunded():
    payment = _payment("succeeded", refunded_amount={"value": "150.00", "currency": "RUB"})
    assert map_status(payment) is PaymentOutcome.REFUNDED


def test_map_status_partially_refunded_stays_succeeded():
    payment = _payment("succeeded", refunded_amount={"value": "50.00", "currency": "RUB"})
    assert map_status(payment) is PaymentOutcome.SUCCEEDED


def test_map_status_zero_refunded_stays_succeeded():
    payment = _payment("succeeded", refunded_amount={"value": "0.00", "currency": "RUB"})
    assert map_status(payment) is PaymentOutcome.SUCCEEDED


def test_map_status_refunded_amount_on_canceled_is_not_refunded():
    payment = _payment("canceled", refunded_amount={"value": "150.00", "currency": "RUB"})
    assert map_status(payment) is PaymentOutcome.CANCELED


@pytest.mark.parametrize("status", ["refunded", "", None, "SUCCEEDED"])
def test_map_status_unknown_raises(status):
    with pytest.raises(ProviderError):
        map_status(_payment(status))


# --- parse_notification ------------------------------------------------------------------------------------------


def _note(event: str = "payment.succeeded", obj: Any = ..., **top: Any) -> bytes:
    body: dict[str, Any] = {"type": "notification", "event": event}
    if obj is ...:
        obj = {"id": "pay-1", "status": "succeeded", "metadata": {"order_id": "o1", "attempt_id": "a1"}}
    if obj is not None:
        body["object"] = obj
    body.update(top)
    return json.dumps(body).encode()


def test_parse_notification_payment_succeeded():
    claim = parse_notification(_note())
    assert claim.event == "payment.succeeded"
    assert claim.provider_payment_id == "pay-1"
    assert claim.status == "succeeded"
    assert claim.attempt_id == "a1"


@pytest.mark.parametrize("event", ["payment.canceled", "payment.waiting_for_capture"])
def test_parse_notification_other_payment_events(event):
    assert parse_notification(_note(event)).event == event


def test_parse_notification_refund_uses_payment_id():
    body = _note(
        "refund.succeeded",
        {
            "id": "refund-9",
            "payment_id": "pay-1",
            "status": "succeeded",
            "amount": {"value": "150.00", "currency": "RUB"},
        },
    )
    claim = parse_notification(body)
    assert claim.provider_payment_id == "pay-1"
    assert claim.attempt_id is None


def test_parse_notification_missing_object():
    with pytest.raises(InvalidNotification):
        parse_notification(_note(obj=None))


@pytest.mark.parametrize("obj", ["pay-1", 5, ["pay-1"], True])
def test_parse_notification_non_object_object(obj):
    with pytest.raises(InvalidNotification):
        parse_notification(_note(obj=obj))


@pytest.mark.parametrize("body", [b"", b"not json", b"{", b"\xff\xfe", b"[]", b"null", b'"notification"'])
def test_parse_notification_non_json_or_non_object(body):
    with pytest.raises(InvalidNotification):
        parse_notification(body)


@pytest.mark.parametrize("kind", ["event", "Notification", None])
def test_parse_notification_wrong_type(kind):
    data = json.loads(_note())
    if kind is None:
        del data["type"]
    else:
        data["type"] = kind
    with pytest.raises(InvalidNotification):
        parse_notification(json.dumps(data).encode())


def test_parse_notification_missing_id():
    with pytest.raises(InvalidNotification):
        parse_notification(_note(obj={"status": "succeeded"}))


def test_parse_notification_refund_without_payment_id():
    with pytest.raises(InvalidNotification):
        parse_notification(_note("refund.succeeded", {"id": "refund-9", "status": "succeeded"}))


# --- client ------------------------------------------------------------------------------------------------------

REQUEST = PaymentRequest(
    reference="attempt-uuid-1",
    order_id="order-uuid-1",
    idempotency_key="idem-key-1",
    amount_kopecks=15000,
    description="Капучино " * 40,
    return_url="https://pay.example/v1/order-status-page?order_id=order-uuid-1",
    notification_url="https://pay.example/unused",
)


def _created(request: httpx.Request) -> httpx.Response:
    return yookassa_created(request, payment_id="2d9d1c37-000f-5000-9000-1b6b0f5a3a55", url="https://yoomoney.test/c")


def _client(handler) -> YooKassaClient:
    return YooKassaClient(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        base_url="https://yookassa.test/v3",
        shop_id="123456",
        secret_key="test_secret",
        connect_timeout=3,
        read_timeout=10,
    )


def test_create_payment_wire_format():
    rec = Recorder(_created)
    payment = run(_client(rec).create_payment(REQUEST))
    request = rec.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://yookassa.test/v3/payments"
    assert request.headers["Idempotence-Key"] == "idem-key-1"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"123456:test_secret").decode()
    body = json.loads(request.content)
    assert body["amount"] == {"value": "150.00", "currency": "RUB"}
    assert body["capture"] is True
    assert body["confirmation"] == {"type": "redirect", "return_url": REQUEST.return_url}
    assert len(body["description"]) <= 128
    assert body["metadata"]["order_id"] == "order-uuid-1"
    assert payment.provider_payment_id == "2d9d1c37-000f-5000-9000-1b6b0f5a3a55"
    assert payment.amount_kopecks == 15000
    assert payment.currency == "RUB"
    assert payment.outcome is PaymentOutcome.PENDING
    assert payment.confirmation_url == "https://yoomoney.test/c"
    assert payment.reference == "attempt-uuid-1"
    assert payment.order_id == "order-uuid-1"


def test_create_payment_amount_with_kopecks():
    rec = Recorder(_created)
    run(_client(rec).create_payment(PaymentRequest(**{**REQUEST.__dict__, "amount_kopecks": 15050})))
    assert json.loads(rec.requests[0].content)["amount"]["value"] == "150.50"


def test_create_payment_email_in_metadata():
    rec = Recorder(_created)
    run(_client(rec).create_payment(PaymentRequest(**{**REQUEST.__dict__, "email": "a@b.c"})))
    assert json.loads(rec.requests[0].content)["metadata"]["customer_email"] == "a@b.c"


def test_get_payment():
    def reply(request):
        return httpx.Response(
            200,
            json={
                "id": "p-1",
                "status": "succeeded",
                "paid": True,
                "amount": {"value": "150.00", "currency": "RUB"},
                "metadata": {"order_id": "o", "attempt_id": "a"},
            },
        )

    rec = Recorder(reply)
    payment = run(_client(rec).get_payment("p-1"))
    assert rec.requests[0].method == "GET"
    assert str(rec.requests[0].url) == "https://yookassa.test/v3/payments/p-1"
    assert "Authorization" in rec.requests[0].headers
    assert payment.outcome is PaymentOutcome.SUCCEEDED
    assert payment.amount_kopecks == 15000


def _err(status: int, code: str = "invalid_request"):
    return lambda request: httpx.Response(
        status, json={"type": "error", "id": "e-1", "code": code, "description": "bad", "parameter": "amount"}
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ProviderRejected),
        (404, ProviderRejected),
        (401, ProviderMisconfigured),
        (403, ProviderMisconfigured),
        (429, ProviderUnavailable),
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (503, ProviderUnavailable),
    ],
)
def test_create_payment_error_mapping(status, error):
    with pytest.raises(error):
        run(_client(Recorder(_err(status))).create_payment(REQUEST))


def test_500_with_html_body_unavailable():
    with pytest.raises(ProviderUnavailable):
        run(_client(Recorder(lambda r: httpx.Response(500, text="<html/>"))).create_payment(REQUEST))


def test_400_with_non_object_json_body_is_rejected():
    # e.g. a proxy answering a JSON array/string: still a refusal, not a crash with AttributeError
    with pytest.raises(ProviderRejected):
        run(_client(Recorder(lambda r: httpx.Response(400, json=["bad"]))).create_payment(REQUEST))


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ConnectError])
def test_create_payment_transport_errors_unavailable(exc):
    def raise_(request):
        raise exc("boom", request=request)

    with pytest.raises(ProviderUnavailable):
        run(_client(Recorder(raise_)).create_payment(REQUEST))


def test_malformed_success_body_is_unavailable():
    with pytest.raises(ProviderUnavailable):
        run(_client(Recorder(lambda r: httpx.Response(200, json={"id": "x"}))).create_payment(REQUEST))


def test_same_key_reused_for_retry_of_same_request():
    rec = Recorder(_created)
    client = _client(rec)
    run(client.create_payment(REQUEST))
    run(client.create_payment(REQUEST))
    assert [r.headers["Idempotence-Key"] for r in rec.requests] == [REQUEST.idempotency_key] * 2
    assert rec.requests[0].content == rec.requests[1].content
