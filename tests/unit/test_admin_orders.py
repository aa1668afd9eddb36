"""The staff side (issue 12): the "needs attention" list, search by order reference / machine uuid / provider
payment id, "mark made", and "refund through the provider" behind a confirmation page, recorded on the order."""

from __future__ import annotations

import itertools
import json

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from coffee_payment.integrations import http as shared_http
from coffee_payment.orders.display import order_reference
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import AttemptStatus, OrderStatus
from tests.unit.factories import make_attempt, make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]
_n = itertools.count()
CHANGELIST = "/admin/orders/order/"
ATTENTION = "/admin/orders/orderneedingattention/"


@pytest.fixture
def staff(client: Client) -> Client:
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


def _order(status: str, *, payment_id: str | None = None) -> Order:
    order = make_order(status=status, size=0)
    if payment_id:
        make_attempt(order, payment_id=payment_id, status=AttemptStatus.SUCCEEDED)
    return order


def _listed(client: Client, url: str, **params: str) -> set[str]:
    body = client.get(url, params).content.decode()
    return {ref for ref in (order_reference(o.id) for o in Order.objects.all()) if ref in body}


def test_needs_attention_lists_exactly_the_orders_waiting_for_staff(staff: Client) -> None:
    waiting = {order_reference(_order(s).id) for s in ("make_failed", "make_unknown", "manual_make")}
    for status in ("created", "pending", "make_pending", "successful", "not_paid", "refunded", "failed"):
        _order(status)
    assert _listed(staff, ATTENTION) == waiting
    assert _listed(staff, CHANGELIST, attention="yes") == waiting
    assert len(_listed(staff, CHANGELIST)) == 10


def test_search_by_reference_machine_uuid_and_provider_payment_id(staff: Client) -> None:
    target = _order("make_failed", payment_id="2f1a-yk-payment")
    _order("make_failed", payment_id="other-payment")
    ref = order_reference(target.id)
    for term in (ref, ref.lower().replace("-", ""), target.machine_uuid, "2f1a-yk-payment"):
        assert _listed(staff, CHANGELIST, q=term) == {ref}, term


def test_list_shows_rubles_and_staff_status_names(staff: Client) -> None:
    _order("make_unknown")
    body = staff.get(CHANGELIST, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "₽150.00" in body and "Make outcome unknown" in body and "15000" not in body
    ru = staff.get(CHANGELIST).content.decode()
    assert "150,00\u00a0₽" in ru and "Исход приготовления неизвестен" in ru


def test_mark_made(staff: Client) -> None:
    unknown, paid_late, created = _order("make_unknown"), _order("manual_make"), _order("created")
    staff.post(
        ATTENTION,
        {"action": "mark_made", "_selected_action": [str(unknown.pk), str(paid_late.pk)]},
    )
    staff.post(CHANGELIST, {"action": "mark_made", "_selected_action": [str(created.pk)]})
    statuses = {o.pk: o.status for o in Order.objects.all()}
    assert statuses == {unknown.pk: "successful", paid_late.pk: "successful", created.pk: "created"}


@pytest.fixture
def yookassa_refunds():
    """A YooKassa stand-in: POST refunds succeeds; GET payments/{id} then reports the payment fully refunded."""
    requests: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.method == "POST" and request.url.path.endswith("/refunds"):
            body = json.loads(request.content)
            return httpx.Response(200, json={"id": "rf-1", "status": "succeeded", **body})
        payment_id = request.url.path.rsplit("/", 1)[1]
        amount = {"value": "150.00", "currency": "RUB"}
        return httpx.Response(
            200,
            json={"id": payment_id, "status": "succeeded", "paid": True, "amount": amount, "refunded_amount": amount},
        )

    shared_http.set_transport(httpx.MockTransport(reply))
    yield requests
    shared_http.set_transport(None)


def test_refund_asks_for_confirmation_then_refunds_and_records(staff: Client, yookassa_refunds) -> None:
    order = _order("make_unknown", payment_id="yk-paid-1")
    form = {"action": "refund_through_provider", "_selected_action": [str(order.pk)]}
    confirm = staff.post(ATTENTION, form)
    assert confirm.status_code == 200 and "refund-orders" in confirm.content.decode()
    assert yookassa_refunds == [] and Order.objects.get(pk=order.pk).status == "make_unknown"

    done = staff.post(ATTENTION, {**form, "confirm": "yes"}, follow=True)
    assert done.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert "staff: yookassa refund of yk-paid-1: succeeded" in order.refund_result
    refund = yookassa_refunds[0]
    assert refund.url.path.endswith("/refunds") and refund.headers["Idempotence-Key"]
    assert json.loads(refund.content) == {"payment_id": "yk-paid-1", "amount": {"value": "150.00", "currency": "RUB"}}


def test_refund_without_a_taken_payment_is_refused(staff: Client, yookassa_refunds) -> None:
    order = _order("created")
    response = staff.post(CHANGELIST, {"action": "refund_through_provider", "_selected_action": [str(order.pk)]})
    assert "refund-orders" not in response.content.decode()
    staff.post(CHANGELIST, {"action": "refund_through_provider", "_selected_action": [str(order.pk)], "confirm": "yes"})
    assert yookassa_refunds == [] and Order.objects.get(pk=order.pk).status == "created"
