"""The provider seam: the generic code (payment_initiate, the webhook view, the inbox, notification processing,
payment_settle, staff refunds) reaches a provider only through the registry, so a third provider registered there
(tests/unit/fake_provider.py) is paid, notified, settled and refunded without a change anywhere else."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from django.test import AsyncRequestFactory

from coffee_payment.integrations import http as shared_http
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import AttemptStatus, OrderStatus
from coffee_payment.payments import views
from coffee_payment.payments.models import Notification, NotificationVerdict, PaymentAttempt
from coffee_payment.payments.providers import PROVIDERS
from coffee_payment.payments.refunds import payment_refund
from coffee_payment.payments.services import payment_initiate
from tests.unit.factories import make_order
from tests.unit.fake_provider import FakeProvider

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture
def fake(monkeypatch) -> FakeProvider:
    """The fake provider registered as ``fakepay``; Tmetr (the make command) answers 200 in-process."""
    provider = FakeProvider()
    monkeypatch.setitem(PROVIDERS, provider.name, provider)
    shared_http.set_transport(httpx.MockTransport(lambda request: httpx.Response(200, json={})))
    yield provider
    shared_http.set_transport(None)


def _notify(provider: FakeProvider, payload: dict):
    request = AsyncRequestFactory().post(
        provider.webhook_path, data=json.dumps(payload), content_type="application/json", REMOTE_ADDR="203.0.113.7"
    )
    return asyncio.run(views.webhook(request, provider=provider.name))


def test_a_registered_third_provider_is_paid_notified_and_settled_through_the_generic_code(fake):
    order = make_order(provider=fake.name)
    url = asyncio.run(payment_initiate(order_id=str(order.id)))
    (payment_id,) = fake.bank.payments
    assert url == f"https://fake.example/pay/{payment_id}"
    attempt = PaymentAttempt.objects.get(order=order)
    assert attempt.provider == fake.name and attempt.provider_payment_id == payment_id
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING

    fake.bank.payments[payment_id]["status"] = "paid"  # the customer pays
    response = _notify(fake, {"payment_id": payment_id, "reference": str(attempt.id)})
    assert (response.status_code, response.content) == (200, b"accepted")  # the provider's own answer format
    note = Notification.objects.get(provider=fake.name)
    assert note.verdict == NotificationVerdict.APPLIED
    assert fake.bank.calls == {"create": 1, "get": 1}  # the claim was confirmed with the provider once
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert Order.objects.get(pk=order.pk).status in (OrderStatus.MAKE_PENDING, OrderStatus.SUCCESSFUL)

    again = _notify(fake, {"payment_id": payment_id, "reference": str(attempt.id)})  # a duplicate changes nothing
    assert again.status_code == 200
    assert Notification.objects.filter(provider=fake.name).latest("pk").verdict == NotificationVerdict.NO_CHANGE


def test_a_third_providers_malformed_and_unknown_notifications_are_answered_in_its_format(fake):
    bad = _notify(fake, {"no": "payment"})
    assert (bad.status_code, bad.content) == (400, b"no payment_id")
    unknown = _notify(fake, {"payment_id": "fp-404"})
    assert (unknown.status_code, unknown.content) == (200, b"accepted")
    verdicts = list(Notification.objects.filter(provider=fake.name).order_by("pk").values_list("verdict", flat=True))
    assert verdicts == [NotificationVerdict.REJECTED, NotificationVerdict.UNKNOWN_PAYMENT]
    assert fake.bank.calls == {}  # refused before any provider call


def test_a_third_providers_payment_is_refunded_through_the_protocol(fake):
    order = make_order(provider=fake.name)
    asyncio.run(payment_initiate(order_id=str(order.id)))
    (payment_id,) = fake.bank.payments
    attempt = PaymentAttempt.objects.get(order=order)
    fake.bank.payments[payment_id]["status"] = "paid"
    _notify(fake, {"payment_id": payment_id, "reference": str(attempt.id)})
    result = asyncio.run(payment_refund(order=Order.objects.get(pk=order.pk), actor="staff"))
    assert fake.bank.calls["refund"] == 1
    assert f"fakepay refund of {payment_id}: void" in result.detail
