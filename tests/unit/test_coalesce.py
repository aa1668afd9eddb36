"""Provider re-fetches for notifications coalesced per payment (issue 11: no amplification), and the bound on open
payments per device. The provider is an ``httpx.MockTransport`` that counts calls and answers slowly enough for
concurrent notifications to overlap."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
from django.test import override_settings
from django.utils import timezone

from coffee_payment.devices.models import Device, Merchant, ProviderAccount
from coffee_payment.integrations import http as shared_http
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import AttemptStatus, OrderStatus, PaymentOutcome
from coffee_payment.payments.coalesce import answer_from_json, answer_to_json
from coffee_payment.payments.models import PaymentAttempt
from coffee_payment.payments.notifications import provider_process
from coffee_payment.payments.providers import PROVIDERS
from coffee_payment.payments.providers.base import ProviderPayment
from coffee_payment.payments.providers.tbank_token import tbank_token
from coffee_payment.payments.services import PaymentError, _claim_attempt

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def yookassa_process(body: bytes):
    return await provider_process(PROVIDERS["yookassa"], body)


async def tbank_process(body: bytes):
    return await provider_process(PROVIDERS["tbank"], body)


YK_ID = "2f0000aa-000f-5000-9000-1b2c3d4e5f60"
TB_ID = "7001"


class Provider:
    """Counts GETs per path; ``status`` is what the payment is now (changed by the tests, as the bank would)."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.calls: dict[str, int] = {}

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls[path] = self.calls.get(path, 0) + 1
        await asyncio.sleep(0.05)
        if path.endswith("/make"):  # Tmetr
            return httpx.Response(200, json={})
        if "/refunds/" in path:
            refund = {"id": path.rsplit("/", 1)[1], "payment_id": YK_ID, "status": "succeeded"}
            return httpx.Response(200, json={**refund, "amount": {"value": "150.00", "currency": "RUB"}})
        if path.endswith("GetState"):
            return httpx.Response(
                200,
                json={"Success": True, "ErrorCode": "0", "PaymentId": TB_ID, "Status": self.status, "Amount": 15000},
            )
        return httpx.Response(
            200,
            json={
                "id": YK_ID,
                "status": self.status,
                "amount": {"value": "150.00", "currency": "RUB"},
                "metadata": {},
            },
        )

    def count(self, suffix: str) -> int:
        return sum(n for path, n in self.calls.items() if path.endswith(suffix))


def _attempt(provider: str, payment_id: str, *, n: int = 0) -> PaymentAttempt:
    merchant = Merchant.objects.create(name=f"M {provider} {n}")
    ProviderAccount.objects.create(merchant=merchant, provider=provider, account_id="TerminalA", secret="password")
    device = Device.objects.create(
        merchant=merchant, device_uuid=f"d-{provider}-{n}", tmetr_device_id="t", name="D", payment_scenario=provider
    )
    order = Order.objects.create(
        machine_uuid=f"m-{provider}-{n}", device=device, drink_no="d7", drink_name="Латте", size=1,
        price_kopecks=15000, status=OrderStatus.PENDING, expires_at=timezone.now() + timedelta(minutes=10),
    )  # fmt: skip
    return PaymentAttempt.objects.create(
        order=order, provider=provider, provider_payment_id=payment_id, amount_kopecks=15000,
        status=AttemptStatus.PENDING,
    )  # fmt: skip


@pytest.fixture
def provider():
    fake = Provider("waiting_for_capture")
    shared_http.set_transport(httpx.MockTransport(fake))
    yield fake
    shared_http.set_transport(None)


def _yookassa(event: str, status: str) -> bytes:
    return json.dumps({"type": "notification", "event": event, "object": {"id": YK_ID, "status": status}}).encode()


def _tbank(status: str) -> bytes:
    fields = {"TerminalKey": "TerminalA", "PaymentId": int(TB_ID), "Status": status, "Amount": 15000, "OrderId": "x"}
    return json.dumps({**fields, "Token": tbank_token(fields, "password")}).encode()


async def _many(process, body: bytes, count: int) -> list:
    return await asyncio.gather(*(process(body) for _ in range(count)))


def test_a_burst_of_notifications_for_one_payment_makes_one_provider_get(provider):
    _attempt("yookassa", YK_ID)
    results = asyncio.run(_many(yookassa_process, _yookassa("payment.waiting_for_capture", "waiting_for_capture"), 40))
    assert all(verdict.http_status == 200 for verdict, _ in results)
    assert provider.count(f"payments/{YK_ID}") == 1
    # Sequential repeats inside the reuse window reuse the kept answer too.
    asyncio.run(_many(yookassa_process, _yookassa("payment.waiting_for_capture", "waiting_for_capture"), 1))
    assert provider.count(f"payments/{YK_ID}") == 1


def test_a_claim_of_another_outcome_is_never_answered_from_the_kept_answer(provider):
    attempt = _attempt("yookassa", YK_ID)
    asyncio.run(yookassa_process(_yookassa("payment.waiting_for_capture", "waiting_for_capture")))
    provider.status = "canceled"
    verdict, _ = asyncio.run(yookassa_process(_yookassa("payment.canceled", "canceled")))
    assert provider.count(f"payments/{YK_ID}") == 2
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.CANCELED
    assert attempt.order.status == OrderStatus.NOT_PAID
    # Canceled is not final for reuse (a TBank AUTH_FAIL can be followed by CONFIRMED): a success claim is checked,
    # once for a burst.
    asyncio.run(_many(yookassa_process, _yookassa("payment.succeeded", "succeeded"), 10))
    assert 3 <= provider.count(f"payments/{YK_ID}") <= 4


@override_settings(PROVIDER_VERIFY_REUSE_S=0)
def test_without_a_reuse_window_only_overlapping_notifications_share_a_fetch(provider):
    _attempt("yookassa", YK_ID)
    body = _yookassa("payment.waiting_for_capture", "waiting_for_capture")
    asyncio.run(_many(yookassa_process, body, 20))
    assert provider.count(f"payments/{YK_ID}") <= 2
    asyncio.run(yookassa_process(body))
    assert provider.count(f"payments/{YK_ID}") <= 3


def test_a_burst_of_yookassa_refund_notifications_makes_one_pair_of_provider_gets(provider):
    attempt = _attempt("yookassa", YK_ID)
    provider.status = "succeeded"
    asyncio.run(yookassa_process(_yookassa("payment.succeeded", "succeeded")))
    refund = {"id": "30000bb2-0015-5000-8000-1a2b3c4d5e6f", "payment_id": YK_ID, "status": "succeeded"}
    body = json.dumps({"type": "notification", "event": "refund.succeeded", "object": refund}).encode()
    results = asyncio.run(_many(yookassa_process, body, 20))
    assert all(verdict.http_status == 200 for verdict, _ in results)
    assert provider.count(f"payments/{YK_ID}") == 2
    assert provider.count("/refunds/30000bb2-0015-5000-8000-1a2b3c4d5e6f") == 1
    attempt.refresh_from_db()
    assert (attempt.status, attempt.order.status) == (AttemptStatus.REFUNDED, OrderStatus.REFUNDED)


def test_a_tbank_refund_is_not_answered_from_a_kept_confirmed(provider):
    attempt = _attempt("tbank", TB_ID)
    provider.status = "CONFIRMED"
    results = asyncio.run(_many(tbank_process, _tbank("CONFIRMED"), 30))
    assert all(verdict.http_status == 200 for verdict, _ in results)
    assert provider.count("GetState") == 1
    assert provider.count("/make") == 1  # dispensed exactly once
    provider.status = "REFUNDED"  # refunded a second later, within the reuse window
    asyncio.run(_many(tbank_process, _tbank("REFUNDED"), 10))
    assert provider.count("GetState") == 2
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.REFUNDED
    assert attempt.order.status == OrderStatus.REFUNDED


def test_a_kept_answer_for_another_payment_is_never_reused(provider):
    attempt = _attempt("yookassa", YK_ID)
    other = ProviderPayment("another", PaymentOutcome.PENDING, "pending", 15000)
    PaymentAttempt.objects.filter(pk=attempt.pk).update(
        last_verified_at=timezone.now(), last_verified_answer=answer_to_json(other)
    )
    asyncio.run(yookassa_process(_yookassa("payment.waiting_for_capture", "waiting_for_capture")))
    assert provider.count(f"payments/{YK_ID}") == 1


def test_a_kept_answer_round_trips_and_garbage_is_no_answer():
    payment = ProviderPayment(YK_ID, PaymentOutcome.SUCCEEDED, "succeeded", 15000, raw={"id": YK_ID})
    assert answer_from_json(json.loads(json.dumps(answer_to_json(payment)))) == payment
    assert answer_from_json({"outcome": "nonsense"}) is None
    assert answer_from_json(None) is None


@override_settings(DEVICE_OPEN_PAYMENTS_MAX=3)
def test_open_payments_per_device_are_bounded():
    first = _attempt("yookassa", "p-0").order
    device = first.device
    orders = [
        Order.objects.create(
            machine_uuid=f"more-{i}",
            device=device,
            drink_no="d7",
            drink_name="Латте",
            size=1,
            price_kopecks=15000,
            expires_at=timezone.now() + timedelta(minutes=10),
        )  # fmt: skip
        for i in range(4)
    ]
    assert _claim_attempt(str(orders[0].id)).action == "create"
    assert _claim_attempt(str(orders[1].id)).action == "create"
    assert _claim_attempt(str(orders[1].id)).action == "wait"  # the same order's double tap: no new payment
    with pytest.raises(PaymentError) as refused:
        _claim_attempt(str(orders[2].id))
    assert refused.value.http_status == 429
    # An expired order's payment no longer counts.
    Order.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _claim_attempt(str(orders[2].id)).action == "create"


def test_notifications_waiting_for_a_failed_fetch_fail_too_instead_of_fetching_in_turn(provider):
    _attempt("yookassa", YK_ID)

    async def failing(request: httpx.Request) -> httpx.Response:
        provider.calls[request.url.path] = provider.calls.get(request.url.path, 0) + 1
        await asyncio.sleep(0.3)
        return httpx.Response(503, json={"type": "error", "code": "internal_server_error"})

    shared_http.set_transport(httpx.MockTransport(failing))
    results = asyncio.run(_many(yookassa_process, _yookassa("payment.succeeded", "succeeded"), 20))
    assert {verdict.http_status for verdict, _ in results} == {503}
    assert provider.count(f"payments/{YK_ID}") == 1
    shared_http.set_transport(httpx.MockTransport(provider))  # the provider is back: the next one fetches
    verdict, _ = asyncio.run(yookassa_process(_yookassa("payment.waiting_for_capture", "waiting_for_capture")))
    assert verdict.http_status == 200
    assert provider.count(f"payments/{YK_ID}") == 2
