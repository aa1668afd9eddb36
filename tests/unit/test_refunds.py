"""``payment_refund`` (the admin's refund action): provider call, the answer applied through ``payment_refresh``,
the outcome recorded on the order; a repeated YooKassa refund reuses its Idempotence-Key."""

from __future__ import annotations

import json

import httpx
import pytest

from coffee_payment.integrations import http as shared_http
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import AttemptStatus, OrderStatus
from coffee_payment.payments.refunds import RefundError, payment_refund
from tests.unit.factories import make_attempt, make_order
from tests.unit.mock_http import run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def _paid_order(provider: str, status: str = OrderStatus.MAKE_FAILED) -> Order:
    order = make_order(status=status, provider=provider, account_id="terminal", secret="password")
    make_attempt(order, payment_id="7001", status=AttemptStatus.SUCCEEDED)
    return order


@pytest.fixture
def transport():
    """Install a MockTransport answering with ``transport.reply``; records requests."""

    class Fake:
        requests: list[httpx.Request] = []
        reply = staticmethod(lambda request: httpx.Response(500))

    def handler(request: httpx.Request) -> httpx.Response:
        Fake.requests.append(request)
        return Fake.reply(request)

    Fake.requests = []
    shared_http.set_transport(httpx.MockTransport(handler))
    yield Fake
    shared_http.set_transport(None)


def test_tbank_refund_is_a_cancel_then_applied(transport) -> None:
    order = _paid_order("tbank")
    attempt_id = str(order.attempts.get().id)  # TBank echoes our attempt id as OrderId

    def reply(request: httpx.Request) -> httpx.Response:
        common = {"Success": True, "ErrorCode": "0", "PaymentId": "7001", "Amount": 15000, "OrderId": attempt_id}
        return httpx.Response(200, json={**common, "Status": "REFUNDED"})

    transport.reply = reply
    result = run(payment_refund(order=order, actor="olga"))
    assert [r.url.path.rsplit("/", 1)[1] for r in transport.requests] == ["Cancel", "GetState"]
    assert json.loads(transport.requests[0].content)["PaymentId"] == "7001"  # full amount: no Amount
    order.refresh_from_db()
    assert result.order_status == order.status == OrderStatus.REFUNDED
    assert "olga: tbank refund of 7001: REFUNDED" in order.refund_result


def test_yookassa_refund_retried_reuses_the_key_and_a_5xx_is_recorded_as_unknown(transport) -> None:
    order = _paid_order("yookassa", OrderStatus.MANUAL_MAKE)
    transport.reply = lambda request: httpx.Response(503, json={"type": "error", "code": "internal_server_error"})
    with pytest.raises(RefundError):
        run(payment_refund(order=order, actor="olga"))
    with pytest.raises(RefundError):
        run(payment_refund(order=order, actor="olga"))
    keys = {r.headers["Idempotence-Key"] for r in transport.requests}
    assert len(transport.requests) == 2 and len(keys) == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.MANUAL_MAKE and order.refund_result.count("refund OUTCOME UNKNOWN") == 2


def test_nothing_to_refund(transport) -> None:
    order = _paid_order("yookassa", OrderStatus.NOT_PAID)
    with pytest.raises(RefundError, match="возвращать нечего"):
        run(payment_refund(order=order, actor="olga"))
    assert transport.requests == []
