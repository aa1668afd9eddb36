"""The shared error tree of orders and payments (``coffee_payment/errors.py``): one base, statuses by meaning."""

from __future__ import annotations

import pytest

from coffee_payment.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    ServiceError,
    TemporarilyUnavailable,
    UpstreamError,
)
from coffee_payment.payments.services import PaymentError


@pytest.mark.parametrize(
    ("error", "status"),
    [(InvalidRequest, 400), (NotFound, 404), (Conflict, 409), (UpstreamError, 502), (TemporarilyUnavailable, 503)],
)
def test_each_meaning_has_its_status(error, status):
    raised = error("Customer-facing text.")
    assert isinstance(raised, ServiceError)
    assert (raised.http_status, raised.message, str(raised)) == (
        status,
        "Customer-facing text.",
        "Customer-facing text.",
    )


def test_payments_raise_the_same_class_the_views_catch():
    assert PaymentError is ServiceError
    assert ServiceError("Try again.", http_status=503).http_status == 503
