"""The background jobs run at the same time (a breaker pass; these held): two reconcile_payments and two
sweep_dispenses on the same missed payments and owed makes make each drink once, and a success paid after
expiry is manual_make; a webhook racing the status poll's refresh for the same payment makes one drink. Threads
against the test database — run with a postgres DATABASE_URL for real row locks."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.utils import timezone

from coffee_payment.integrations.http import set_transport
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import MakeState, OrderStatus
from coffee_payment.payments.services import payment_refresh
from tests.unit.factories import make_attempt, make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
AMOUNT = {"value": "150.00", "currency": "RUB"}


class _Services:
    """YooKassa saying every payment succeeded, and Tmetr accepting makes (``makes``: machine uuids sent)."""

    def __init__(self) -> None:
        self.makes: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/command/make"):
            with self._lock:
                self.makes.append(json.loads(request.content)[0]["orderUuid"])
            return httpx.Response(200, json={})
        payment_id = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(
            200, json={"id": payment_id, "status": "succeeded", "paid": True, "amount": AMOUNT, "metadata": {}}
        )


@pytest.fixture
def services():
    fake = _Services()
    set_transport(httpx.MockTransport(fake))
    yield fake
    set_transport(None)


def _together(*jobs: Callable[[], object]) -> list[str]:
    """Run the jobs in threads at once; the errors they raised."""
    errors: list[str] = []
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], object]) -> None:
        try:
            start.wait()
            job()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_two_reconciles_and_two_sweeps_at_once_make_each_drink_once(services, settings) -> None:
    settings.DISPENSE_SWEEP_GRACE_S = 0
    missed = []
    for n in range(5):  # success notifications lost
        order = make_order(status=OrderStatus.PENDING)
        make_attempt(order, payment_id=f"yk-missed-{n}", age=timedelta(minutes=1))
        missed.append(order)
    owed = []
    for _ in range(3):  # the process that committed the make died before sending it
        order = make_order(status=OrderStatus.MAKE_PENDING)
        paid = timezone.now() - timedelta(seconds=30)
        Order.objects.filter(pk=order.pk).update(make_state=MakeState.QUEUED, paid_at=paid)
        owed.append(order)
    late = make_order(status=OrderStatus.PENDING, expires_in=timedelta(minutes=-1))  # paid after it expired
    make_attempt(late, payment_id="yk-late", age=timedelta(minutes=16))

    def reconcile() -> None:
        call_command("reconcile_payments", "--min-age", "0", stdout=io.StringIO(), stderr=io.StringIO())

    def sweep() -> None:
        call_command("sweep_dispenses", stdout=io.StringIO())

    assert _together(reconcile, reconcile, sweep, sweep) == []
    assert sorted(services.makes) == sorted(order.machine_uuid for order in missed + owed)
    for order in missed + owed:
        order.refresh_from_db()
        assert (order.status, order.make_state) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)
    late.refresh_from_db()
    assert (late.status, late.make_state) == (OrderStatus.MANUAL_MAKE, MakeState.NONE)


def test_a_webhook_racing_the_status_refresh_makes_one_drink(services) -> None:
    order = make_order(status=OrderStatus.PENDING)
    attempt = make_attempt(order, payment_id="yk-raced", age=timedelta(seconds=30))
    notification = {"type": "notification", "event": "payment.succeeded", "object": {"id": "yk-raced"}}

    def webhook() -> None:
        response = Client().post("/v1/yook-pay-webhook", json.dumps(notification), content_type="application/json")
        assert response.status_code == 200

    def refresh() -> None:
        async_to_sync(payment_refresh)(attempt_id=str(attempt.id))

    def status_page() -> None:
        assert Client().get(f"/v1/order-status/{order.id}").status_code == 200

    assert _together(webhook, refresh, webhook, refresh, status_page) == []
    assert services.makes == [order.machine_uuid]
    order.refresh_from_db()
    assert (order.status, order.make_state) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)
