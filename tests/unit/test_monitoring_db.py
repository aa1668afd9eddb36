"""Metrics that read or follow the database: orders needing attention, payments changed by ``payment_apply``."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from coffee_payment.monitoring.attention import count_orders_needing_attention
from coffee_payment.orders.state import AttemptStatus, OrderStatus, PaymentOutcome
from coffee_payment.payments.services import payment_apply
from tests.unit.test_services_db import _attempt, _order, _payment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def test_orders_needing_attention_counts_make_failed_manual_make_and_make_unknown():
    for status in (OrderStatus.MAKE_FAILED, OrderStatus.MANUAL_MAKE, OrderStatus.PENDING, OrderStatus.MAKE_FAILED):
        _order(status=status)
    _order(status="make_unknown")  # the status the dispense rework (issue 9) adds; counted already
    assert count_orders_needing_attention() == 4


def test_a_payment_status_change_is_counted_once_per_change():
    labels = {"provider": "yookassa", "outcome": AttemptStatus.SUCCEEDED}
    before = REGISTRY.get_sample_value("coffee_payments_total", labels) or 0
    attempt = _attempt(_order())
    paid = _payment(PaymentOutcome.SUCCEEDED)
    payment_apply(attempt_id=str(attempt.id), payment=paid)
    payment_apply(attempt_id=str(attempt.id), payment=paid)  # duplicate: no change, not counted
    assert REGISTRY.get_sample_value("coffee_payments_total", labels) == before + 1
