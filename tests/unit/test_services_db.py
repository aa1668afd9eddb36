"""``payment_apply`` against the database: compare-and-set, exactly-once dispense, late/mismatch handling."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from coffee_payment.orders.state import AttemptStatus, MakeState, OrderStatus, PaymentOutcome
from coffee_payment.payments.providers.base import ProviderPayment
from coffee_payment.payments.services import payment_apply
from tests.unit.factories import PRICE, make_attempt, make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


_order = make_order
_attempt = make_attempt


def _payment(
    outcome: PaymentOutcome, *, payment_id: str = "pay-1", amount: int = PRICE, currency: str = "RUB"
) -> ProviderPayment:
    status = {
        PaymentOutcome.SUCCEEDED: "succeeded",
        PaymentOutcome.CANCELED: "canceled",
        PaymentOutcome.PENDING: "pending",
        PaymentOutcome.REFUNDED: "succeeded",
    }[outcome]
    return ProviderPayment(
        provider_payment_id=payment_id,
        outcome=outcome,
        provider_status=status,
        amount_kopecks=amount,
        currency=currency,
        raw={"id": payment_id, "status": status},
    )


def _status(obj) -> str:
    obj.refresh_from_db()
    return obj.status


def test_success_dispenses_once_and_duplicate_is_noop():
    order = _order()
    attempt = _attempt(order)
    first = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    assert first.order_status == OrderStatus.MAKE_PENDING
    assert first.changed is True
    assert first.dispense is True
    assert first.order_id == str(order.id)
    assert _status(order) == OrderStatus.MAKE_PENDING
    assert order.paid_at is not None
    assert order.make_state == MakeState.QUEUED  # the owed make is committed with the move (issue 9)
    assert _status(attempt) == AttemptStatus.SUCCEEDED

    second = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    assert second.changed is False
    assert second.dispense is False
    assert second.order_status == OrderStatus.MAKE_PENDING
    assert _status(order) == OrderStatus.MAKE_PENDING


def test_success_on_creating_attempt_without_payment_id_records_it():
    order = _order(status=OrderStatus.CREATED)
    attempt = _attempt(order, payment_id=None, status=AttemptStatus.CREATING)
    result = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED, payment_id="p-9"))
    assert result.dispense is True
    attempt.refresh_from_db()
    assert attempt.provider_payment_id == "p-9"
    assert attempt.status == AttemptStatus.SUCCEEDED


def test_many_repeats_dispense_exactly_once():
    order = _order()
    attempt = _attempt(order)
    results = [payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED)) for _ in range(5)]
    assert sum(r.dispense for r in results) == 1


def test_pending_after_success_is_stale():
    order = _order()
    attempt = _attempt(order)
    payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    result = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.PENDING))
    assert result.changed is False and result.dispense is False
    assert _status(order) == OrderStatus.MAKE_PENDING
    assert _status(attempt) == AttemptStatus.SUCCEEDED


def test_canceled_after_success_is_stale():
    order = _order()
    attempt = _attempt(order)
    payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    result = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.CANCELED))
    assert result.changed is False
    assert _status(order) == OrderStatus.MAKE_PENDING


@pytest.mark.parametrize(("amount", "currency"), [(PRICE - 1, "RUB"), (PRICE + 100, "RUB"), (PRICE, "USD")])
def test_amount_or_currency_mismatch_is_failed(amount, currency):
    order = _order()
    attempt = _attempt(order)
    result = payment_apply(
        attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED, amount=amount, currency=currency)
    )
    assert result.order_status == OrderStatus.FAILED
    assert result.dispense is False
    assert _status(order) == OrderStatus.FAILED


def test_attempt_amount_differs_from_order_is_failed():
    order = _order()
    attempt = _attempt(order, amount=PRICE - 500)
    result = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED, amount=PRICE - 500))
    assert result.order_status == OrderStatus.FAILED
    assert result.dispense is False


def test_success_after_expiry_is_manual_make():
    order = _order(expires_in=timedelta(seconds=-1))
    attempt = _attempt(order)
    result = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    assert result.order_status == OrderStatus.MANUAL_MAKE
    assert result.changed is True
    assert result.dispense is False
    assert _status(order) == OrderStatus.MANUAL_MAKE


def test_success_after_dispense_window_is_manual_make(settings):
    settings.FAST_TRACK_LIMIT_S = 60
    order = _order(expires_in=timedelta(hours=1))
    attempt = _attempt(order, age=timedelta(seconds=120))
    result = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    assert result.order_status == OrderStatus.MANUAL_MAKE
    assert result.dispense is False


def test_success_inside_dispense_window_dispenses(settings):
    settings.FAST_TRACK_LIMIT_S = 600
    order = _order(expires_in=timedelta(hours=1))
    attempt = _attempt(order, age=timedelta(seconds=120))
    result = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    assert result.order_status == OrderStatus.MAKE_PENDING
    assert result.dispense is True


def test_manual_make_then_duplicate_success_stays_manual():
    order = _order(expires_in=timedelta(seconds=-1))
    attempt = _attempt(order)
    payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    again = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    assert again.dispense is False and again.changed is False
    assert _status(order) == OrderStatus.MANUAL_MAKE


def test_canceled_latest_attempt_is_not_paid():
    order = _order()
    attempt = _attempt(order)
    result = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.CANCELED))
    assert result.order_status == OrderStatus.NOT_PAID
    assert result.changed is True
    assert result.dispense is False
    assert _status(attempt) == AttemptStatus.CANCELED


def test_canceled_older_attempt_does_not_change_order():
    order = _order()
    old = _attempt(order, payment_id="pay-old", age=timedelta(seconds=30))
    new = _attempt(order, payment_id="pay-new")
    result = payment_apply(attempt_id=str(old.id), payment=_payment(PaymentOutcome.CANCELED, payment_id="pay-old"))
    assert result.changed is False
    assert result.order_status == OrderStatus.PENDING
    assert _status(order) == OrderStatus.PENDING
    assert _status(old) == AttemptStatus.CANCELED
    assert _status(new) == AttemptStatus.PENDING


def test_not_paid_then_new_attempt_succeeds():
    order = _order()
    first = _attempt(order, payment_id="pay-a", age=timedelta(seconds=60))
    payment_apply(attempt_id=str(first.id), payment=_payment(PaymentOutcome.CANCELED, payment_id="pay-a"))
    assert _status(order) == OrderStatus.NOT_PAID
    second = _attempt(order, payment_id="pay-b")
    result = payment_apply(attempt_id=str(second.id), payment=_payment(PaymentOutcome.SUCCEEDED, payment_id="pay-b"))
    assert result.dispense is True
    assert _status(order) == OrderStatus.MAKE_PENDING


def test_refund_after_make_pending_is_refunded():
    order = _order()
    attempt = _attempt(order)
    payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    result = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.REFUNDED))
    assert result.order_status == OrderStatus.REFUNDED
    assert result.changed is True
    assert result.dispense is False
    assert _status(order) == OrderStatus.REFUNDED
    assert _status(attempt) == AttemptStatus.REFUNDED
    # a late duplicate success never resurrects the order
    again = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    assert again.changed is False and again.dispense is False
    assert _status(order) == OrderStatus.REFUNDED


def test_refund_before_success_wins_and_late_success_never_dispenses():
    """TBank REFUNDED (or a YooKassa refund) that reaches us before the success (issue 9)."""
    order = _order()
    attempt = _attempt(order)
    result = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.REFUNDED))
    assert result.changed is True and result.dispense is False
    assert _status(order) == OrderStatus.REFUNDED
    assert _status(attempt) == AttemptStatus.REFUNDED
    late = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    assert late.dispense is False and late.changed is False
    assert _status(order) == OrderStatus.REFUNDED


def test_refund_of_a_queued_make_cancels_it():
    order = _order()
    attempt = _attempt(order)
    assert payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED)).dispense
    order.refresh_from_db()
    assert order.make_state == MakeState.QUEUED
    payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.REFUNDED))
    order.refresh_from_db()
    assert (order.status, order.make_state) == (OrderStatus.REFUNDED, MakeState.CANCELED)


def test_payment_of_another_attempt_is_noop():
    """Our reference (metadata) is a cross-check when present: another attempt's reference never moves this one;
    a payment without one is matched by the stored payment id (issue 9)."""
    order = _order()
    attempt = _attempt(order)
    foreign = replace(_payment(PaymentOutcome.SUCCEEDED), reference=str(uuid.uuid4()))
    result = payment_apply(attempt_id=str(attempt.id), payment=foreign)
    assert result.changed is False and result.dispense is False
    assert _status(order) == OrderStatus.PENDING
    plain = replace(_payment(PaymentOutcome.SUCCEEDED), reference=None)
    assert payment_apply(attempt_id=str(attempt.id), payment=plain).dispense is True


def test_payment_id_differs_from_attempts_is_noop():
    order = _order()
    attempt = _attempt(order, payment_id="pay-1")
    result = payment_apply(
        attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED, payment_id="pay-other")
    )
    assert result.changed is False
    assert result.dispense is False
    assert _status(order) == OrderStatus.PENDING
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.PENDING
    assert attempt.provider_payment_id == "pay-1"


def test_success_on_already_successful_order_is_noop():
    order = _order(status=OrderStatus.SUCCESSFUL)
    attempt = _attempt(order)
    result = payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED))
    assert result.dispense is False
    assert _status(order) == OrderStatus.SUCCESSFUL


def test_second_attempt_success_after_first_dispensed_does_not_dispense():
    order = _order()
    a = _attempt(order, payment_id="pay-a", age=timedelta(seconds=10))
    b = _attempt(order, payment_id="pay-b")
    first = payment_apply(attempt_id=str(a.id), payment=_payment(PaymentOutcome.SUCCEEDED, payment_id="pay-a"))
    second = payment_apply(attempt_id=str(b.id), payment=_payment(PaymentOutcome.SUCCEEDED, payment_id="pay-b"))
    assert first.dispense is True
    assert second.dispense is False
    assert _status(order) == OrderStatus.MAKE_PENDING
