"""The status JSON's one-query read (``selectors.status_row``) says what the ORM read says, in every state that
changes the body: created, pending with and without a live payment page, pending past expiry, paid; and its
refresh hint is true exactly when ``payment_refresh_if_stale`` could claim a provider poll (issue 14)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.translation import override

from coffee_payment.orders.selectors import order_find, order_status_json, status_body, status_row
from coffee_payment.orders.state import AttemptStatus, OrderStatus
from coffee_payment.payments.models import PaymentAttempt
from coffee_payment.payments.services import _claim_refresh
from tests.unit.factories import make_attempt, make_order

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]


def _same_body(order_id: str) -> dict:
    orm = order_status_json(order_find(order_id))
    raw = status_body(status_row(order_id))
    assert raw == orm
    return raw


@pytest.mark.parametrize("language", ["ru", "en"])
def test_created_paid_and_expired_orders_read_the_same(language: str) -> None:
    with override(language):
        for status, expires_in in (
            (OrderStatus.CREATED, timedelta(minutes=15)),
            (OrderStatus.MAKE_PENDING, timedelta(minutes=15)),
            (OrderStatus.CREATED, timedelta(minutes=-1)),
        ):
            order = make_order(status=status, expires_in=expires_in, show_provider_name=True, location="Hall")
            body = _same_body(str(order.id))
            assert body["expired"] is (expires_in < timedelta(0))


def test_pending_with_a_live_page_offers_continue_until_expiry() -> None:
    order = make_order(status=OrderStatus.PENDING)
    attempt = make_attempt(order)
    PaymentAttempt.objects.filter(pk=attempt.pk).update(confirmation_url="https://pay.example/1")
    assert _same_body(str(order.id))["continue_url"] == "https://pay.example/1"
    newer = make_attempt(order, payment_id="pay-2")
    PaymentAttempt.objects.filter(pk=newer.pk).update(confirmation_url="https://pay.example/2")
    assert _same_body(str(order.id))["action"] == "continue"
    assert status_row(str(order.id)).continue_url == "https://pay.example/2"
    type(order).objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _same_body(str(order.id))["continue_url"] == ""


def test_unknown_and_malformed_ids_read_nothing() -> None:
    assert status_row("not-a-uuid") is None
    assert status_row("3319605c-eca1-4687-9aa0-5b5af8974d7e") is None


def test_refresh_hint_is_true_exactly_when_a_claim_can_win(settings) -> None:
    settings.PAYMENT_REFRESH_INTERVAL_S = 5.0
    order = make_order(status=OrderStatus.PENDING)
    make_attempt(order, age=timedelta(seconds=1))  # too young: the notification is not overdue yet
    assert status_row(str(order.id)).refresh_due is False
    assert _claim_refresh(str(order.id)) is None
    old = make_attempt(order, payment_id="pay-2", age=timedelta(seconds=30))
    assert status_row(str(order.id)).refresh_due is True
    assert _claim_refresh(str(order.id)) == str(old.id)  # the claim polls it now …
    assert status_row(str(order.id)).refresh_due is False  # … and not again within the interval
    assert _claim_refresh(str(order.id)) is None
    PaymentAttempt.objects.filter(pk=old.pk).update(status=AttemptStatus.SUCCEEDED)
    assert status_row(str(order.id)).refresh_due is False
    paid = make_order(status=OrderStatus.PAID)
    make_attempt(paid, payment_id="pay-3", age=timedelta(seconds=30))
    assert status_row(str(paid.id)).refresh_due is False  # only a pending order polls
    no_id = make_order(status=OrderStatus.PENDING)
    make_attempt(no_id, payment_id=None, age=timedelta(seconds=30))
    assert status_row(str(no_id.id)).refresh_due is False
    assert _claim_refresh(str(no_id.id)) is None


@pytest.mark.django_db(transaction=True)
def test_status_json_under_the_lean_handler_makes_one_hop_and_returns_its_connection(monkeypatch) -> None:
    """Served by the lean handler, a poll makes one hop — the read, on its request thread, its connection
    returned to the pool at once — so no signal hop follows (serving/lean.py), and no connection is left open
    on that thread. The body is the one the test client (a sync caller: the read on its own thread) gets."""
    import asyncio

    import asgiref.sync
    import httpx

    from coffee_payment.serving.lean import LeanASGIHandler

    order = make_order()
    calls: list[tuple[str, bool]] = []
    original = asgiref.sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        calls.append((getattr(self.func, "__name__", "?"), self._thread_sensitive))
        return await original(self, *args, **kwargs)

    handler = LeanASGIHandler()

    async def poll() -> httpx.Response:
        transport = httpx.ASGITransport(app=handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.get(f"/v1/order-status/{order.id}")

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", counting)
    response = asyncio.run(poll())
    monkeypatch.undo()
    assert response.status_code == 200, response.text
    assert calls == [("step", True)]
    (thread,) = handler.threads._idle
    from django.db import connection

    assert thread.submit(lambda: connection.connection is None).result(timeout=5), "a connection was left open"
    body = response.json()
    from django.test import Client

    expected = Client().get(f"/v1/order-status/{order.id}").json()
    assert {k: v for k, v in body.items() if k != "server_time"} == {
        k: v for k, v in expected.items() if k != "server_time"
    }
