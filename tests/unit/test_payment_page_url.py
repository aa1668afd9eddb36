"""The provider's payment page URL reaches the customer's browser twice — the status page's «continue» link and
``window.location = redirect_url`` in its script — so only an absolute http(s) URL is ever handed on."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from coffee_payment.integrations import http as shared_http
from coffee_payment.orders.selectors import status_row
from coffee_payment.orders.state import OrderStatus
from coffee_payment.payments.models import PaymentAttempt
from coffee_payment.payments.services import PaymentError, payment_initiate
from tests.unit.factories import make_order
from tests.unit.mock_http import Recorder, yookassa_created

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.domain)",
        "JavaScript://yoomoney.ru/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/checkout",
        "/v1/order-status-page",
        "https://yoomoney.ru/checkout\n",
        "https://" + "a" * 1000 + ".example/",
    ],
)
def test_a_payment_page_that_is_not_an_http_url_is_never_handed_on(url: str) -> None:
    """Was: whatever the provider's answer held was returned as redirect_url and stored as the continue link."""
    shared_http.set_transport(httpx.MockTransport(Recorder(lambda r: yookassa_created(r, payment_id="yk-1", url=url))))
    try:
        order = make_order(provider="yookassa", status=OrderStatus.CREATED)
        with pytest.raises(PaymentError) as raised:
            asyncio.run(payment_initiate(order_id=str(order.id)))
    finally:
        shared_http.set_transport(None)
    assert raised.value.http_status == 502
    assert PaymentAttempt.objects.get(order=order).confirmation_url == ""
    assert status_row(str(order.id)).continue_url == ""


def test_an_https_payment_page_is_handed_on() -> None:
    url = "https://yoomoney.ru/checkout/payments/v2/contract?orderId=2d9d1c37-000f-5000-9000-1b6b0f5a3a55"
    shared_http.set_transport(httpx.MockTransport(Recorder(lambda r: yookassa_created(r, payment_id="yk-2", url=url))))
    try:
        order = make_order(provider="yookassa", status=OrderStatus.CREATED)
        assert asyncio.run(payment_initiate(order_id=str(order.id))) == url
    finally:
        shared_http.set_transport(None)
    assert status_row(str(order.id)).continue_url == url
