"""Pay's database steps: the claim's thread hop also reads what the provider call needs (the attempt's context),
and the answer is recorded without re-reading the order id; a merchant with no account for the provider still
ends in a 502 with the attempt closed and its reason kept, and no provider call."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from coffee_payment.devices.models import ProviderAccount
from coffee_payment.integrations import http as shared_http
from coffee_payment.orders.state import AttemptStatus, OrderStatus
from coffee_payment.payments import services
from coffee_payment.payments.models import PaymentAttempt
from coffee_payment.payments.services import PaymentError, payment_initiate
from tests.unit.factories import make_order
from tests.unit.mock_http import Recorder, yookassa_created

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture
def yookassa() -> list[httpx.Request]:
    """YooKassa's create answering a pending payment with a confirmation URL; the requests it got."""
    create = Recorder(
        lambda r: yookassa_created(r, payment_id="yk-created-1", url="https://yoomoney.example/checkout/1")
    )
    shared_http.set_transport(httpx.MockTransport(create))
    yield create.requests
    shared_http.set_transport(None)


def test_a_fresh_pay_sends_the_claims_context_and_records_the_answer(yookassa, monkeypatch) -> None:
    def no_second_read(attempt_id: str) -> None:
        raise AssertionError("the context was read again in a thread hop of its own")

    monkeypatch.setattr(services, "_attempt_context", no_second_read)
    order = make_order(provider="yookassa", status=OrderStatus.CREATED)
    url = asyncio.run(payment_initiate(order_id=str(order.id)))

    assert url == "https://yoomoney.example/checkout/1"
    attempt = PaymentAttempt.objects.get(order=order)
    (request,) = yookassa
    body = json.loads(request.content)
    assert request.headers["Idempotence-Key"] == str(attempt.idempotency_key)
    assert body["amount"] == {"value": "150.00", "currency": "RUB"}
    assert body["metadata"] == {"order_id": str(order.id), "attempt_id": str(attempt.id)}
    assert body["confirmation"]["return_url"].endswith(f"/v1/order-status-page?order_id={order.id}")
    assert "Капучино" in body["description"]
    assert (attempt.status, attempt.provider_payment_id) == (AttemptStatus.PENDING, "yk-created-1")
    assert attempt.confirmation_url == url and attempt.create_claimed_at is None
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING

    # The double tap gets the same page, no second payment.
    assert asyncio.run(payment_initiate(order_id=str(order.id))) == url and len(yookassa) == 1


def test_a_merchant_without_an_account_is_502_the_attempt_closed_no_provider_call(yookassa) -> None:
    order = make_order(provider="yookassa", status=OrderStatus.CREATED)
    ProviderAccount.objects.filter(merchant_id=order.device.merchant_id).delete()
    with pytest.raises(PaymentError) as raised:
        asyncio.run(payment_initiate(order_id=str(order.id)))
    assert raised.value.http_status == 502
    attempt = PaymentAttempt.objects.get(order=order)
    assert attempt.status == AttemptStatus.ERROR and "has no yookassa account" in attempt.error
    assert yookassa == []
