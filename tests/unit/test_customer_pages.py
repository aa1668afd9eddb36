"""The customer's side in-process (issue 12): QR rules at the view (aliases, repeated parameters, path-unsafe
uuid, expired re-scan), the status JSON's next steps, the page's language, money and shown facts."""

from __future__ import annotations

import itertools
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils.translation import override

from coffee_payment.devices.models import DeviceStatus
from coffee_payment.orders.display import format_money, order_reference, reference_prefix
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import AttemptStatus, OrderStatus
from coffee_payment.payments.models import PaymentAttempt
from tests.unit.factories import make_order

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]

_n = itertools.count()


def _order(*, status: str = OrderStatus.CREATED, expires_in: timedelta = timedelta(minutes=15), **device) -> Order:
    """An order on a test-mode YooKassa machine whose name and location the page shows."""
    n = next(_n)
    return make_order(
        status=status,
        expires_in=expires_in,
        machine_uuid=f"2026112910{n:04d}a1b2-4d5e",
        name=f"Lobby machine {n} (YooKassa)",
        location="Floor 2, by the lifts",
        device_status=DeviceStatus.TEST,
        **device,
    )


def _qr(order: Order, path: str = "/v1/pay", **extra: str) -> str:
    query = {
        "deviceUuid": order.device.device_uuid,
        "drinkNo": order.drink_no,
        "drinkName": order.drink_name,
        "size": str(order.size),
        "uuid": order.machine_uuid,
        **extra,
    }
    return f"{path}?{urlencode(query)}"


@pytest.mark.parametrize("path", ["/v1/pay", "/v1/yook-pay", "/v1/tbank-pay"])
def test_legacy_aliases_behave_like_pay(client: Client, path: str) -> None:
    order = _order()
    response = client.get(_qr(order, path))
    assert response.status_code == 302
    assert response["Location"] == f"/v1/order-status-page?order_id={order.id}"


@pytest.mark.parametrize("path", ["/v1/pay", "/v1/yook-pay", "/v1/tbank-pay"])
def test_repeated_parameter_is_a_400_naming_it(client: Client, path: str) -> None:
    order = _order()
    response = client.get(_qr(order, path) + "&size=2")
    assert response.status_code == 400
    assert "«size»" in response.content.decode() and "больше одного раза" in response.content.decode()
    en = client.get(_qr(order, path) + "&size=2", HTTP_ACCEPT_LANGUAGE="en")
    assert en.status_code == 400 and "“size” is given more than once" in en.content.decode()


@pytest.mark.parametrize("uuid", ["a/b", "a?b", "a#b", "a%2Fb", "a b", "a\x01b", "..", "ü"])
def test_path_unsafe_uuid_is_a_400(client: Client, uuid: str) -> None:
    order = _order()
    response = client.get(_qr(order, uuid=uuid))
    assert response.status_code == 400
    assert "«uuid»" in response.content.decode()
    assert Order.objects.count() == 1


def test_expired_order_rescanned_is_a_410_and_creates_nothing(client: Client) -> None:
    order = _order(expires_in=timedelta(minutes=-1))
    for path in ("/v1/pay", "/v1/yook-pay"):
        response = client.get(_qr(order, path))
        assert response.status_code == 410
        body = response.content.decode()
        assert "Время этого заказа истекло" in body and "закажите напиток заново на автомате" in body.lower()
    assert Order.objects.count() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.CREATED


def test_page_in_russian_with_local_money_reference_location_and_help(client: Client) -> None:
    order = _order(help_line="+7 800 555-35-35")
    body = client.get(f"/v1/order-status-page?order_id={order.id}").content.decode()
    assert '<html lang="ru">' in body
    assert "150,00\u00a0₽" in body and "средний" in body and "Floor 2, by the lifts" in body
    assert order_reference(order.id) in body and str(order.id) not in body.split('<script id="initial-order"')[0]
    assert "+7 800 555-35-35" in body and 'aria-live="polite"' in body
    visible = body.split('<script id="initial-order"')[0]
    assert "YooKassa" not in visible  # not the provider, not the device name carrying it


def test_page_in_english_on_request(client: Client) -> None:
    order = _order()
    body = client.get(f"/v1/order-status-page?order_id={order.id}", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en">' in body and "₽150.00" in body and "Waiting for payment" in body and "medium" in body


def test_provider_name_only_when_the_device_asks(client: Client) -> None:
    order = _order(show_provider_name=True)
    body = client.get(f"/v1/order-status-page?order_id={order.id}").content.decode()
    assert "Оплата через YooKassa" in body.split('<script id="initial-order"')[0]


def test_pending_offers_continue_payment_with_the_live_url(client: Client) -> None:
    order = _order(status=OrderStatus.PENDING)
    PaymentAttempt.objects.create(
        order=order,
        provider="yookassa",
        provider_payment_id="p1",
        amount_kopecks=15000,
        status=AttemptStatus.PENDING,
        confirmation_url="http://127.0.0.1:8001/_sandbox/checkout/yookassa/p1",
    )
    body = client.get(f"/v1/order-status/{order.id}").json()
    assert body["action"] == "continue" and body["continue_url"].endswith("/p1") and body["can_pay"] is False
    page = client.get(f"/v1/order-status-page?order_id={order.id}").content.decode()
    assert 'href="http://127.0.0.1:8001/_sandbox/checkout/yookassa/p1"' in page  # works without JavaScript


def test_declined_offers_pay_again(client: Client) -> None:
    order = _order(status=OrderStatus.NOT_PAID)
    body = client.get(f"/v1/order-status/{order.id}", HTTP_ACCEPT_LANGUAGE="en").json()
    assert body["action"] == "pay_again" and body["can_pay"] is True and body["continue_url"] == ""
    assert body["status_text"] == "The payment did not go through"


@pytest.mark.parametrize("status", list(OrderStatus))
def test_every_status_has_a_next_step_or_a_clear_end(client: Client, status: str) -> None:
    order = _order(status=status)
    body = client.get(f"/v1/order-status/{order.id}").json()
    assert body["status_text"] and body["next_step"]
    assert body["action"] in ("pay", "pay_again", "continue", "") and body["reference"] == order_reference(order.id)
    assert body["price_display"] == "150,00\u00a0₽" and body["price"] == "150.00"


def test_expired_unpaid_order_is_a_clear_end(client: Client) -> None:
    order = _order(status=OrderStatus.NOT_PAID, expires_in=timedelta(seconds=-5))
    body = client.get(f"/v1/order-status/{order.id}", HTTP_ACCEPT_LANGUAGE="en").json()
    assert body["expired"] and body["final"] and body["action"] == "" and not body["can_pay"]
    assert body["next_step"] == "Please order again at the machine."


def test_money_and_reference_formats() -> None:
    assert format_money(15000, "ru") == "150,00\u00a0₽"
    assert format_money(123456789, "ru") == "1\u00a0234\u00a0567,89\u00a0₽"
    assert format_money(150005, "en") == "₽1,500.05"
    with override("en"):
        assert format_money(5) == "₽0.05"
    assert order_reference("1a2b3c4d-0000-4000-8000-000000000000") == "1A2B-3C4D"
    assert reference_prefix(" 1a2b-3C4D ") == "1a2b3c4d" and reference_prefix("1A2B3C4D") == "1a2b3c4d"
    assert reference_prefix("machine-uuid") is None


def test_no_continue_payment_after_expiry(client: Client) -> None:
    order = _order(status=OrderStatus.PENDING, expires_in=timedelta(seconds=-5))
    PaymentAttempt.objects.create(
        order=order,
        provider="yookassa",
        provider_payment_id="p2",
        amount_kopecks=15000,
        status=AttemptStatus.PENDING,
        confirmation_url="http://127.0.0.1:8001/_sandbox/checkout/yookassa/p2",
    )
    body = client.get(f"/v1/order-status/{order.id}").json()
    assert body["action"] == "" and body["continue_url"] == "" and body["next_step"] and not body["final"]


def test_the_page_polls_at_the_one_interval_the_load_profile_reads(client: Client) -> None:
    from coffee_payment.orders.polling import STATUS_POLL_INTERVAL_MS
    from loadtests.runner import parse_args

    order = _order()
    page = client.get(f"/v1/order-status-page?order_id={order.id}").content.decode()
    assert f"setInterval(poll, {STATUS_POLL_INTERVAL_MS})" in page
    assert parse_args([]).poll_interval == STATUS_POLL_INTERVAL_MS / 1000
