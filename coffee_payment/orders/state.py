"""The order state machine (domain.md §5) as pure functions: no I/O, no ORM.

The services call these inside row-locked transactions; the transition table is unit- and property-tested
(``tests/unit/test_state.py``: no sequence of provider events moves an order backwards or dispenses twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.db import models
from django.utils.translation import gettext_lazy as _


class OrderStatus(models.TextChoices):
    """Order statuses, kept from the previous service (plus ``refunded``, and ``make_unknown`` of issue 9).
    Labels are staff-facing (admin); the customer's words are in ``coffee_payment/orders/display.py``."""

    CREATED = "created", _("Unpaid")
    PENDING = "pending", _("Payment pending")
    PAID = "paid", _("Paid, make not sent")
    MAKE_PENDING = "make_pending", _("Make command sent")
    SUCCESSFUL = "successful", _("Made")
    NOT_PAID = "not_paid", _("Payment declined")
    FAILED = "failed", _("Payment problem")
    MAKE_FAILED = "make_failed", _("Make failed")
    MANUAL_MAKE = "manual_make", _("Paid late: make or refund")
    MAKE_UNKNOWN = "make_unknown", _("Make outcome unknown")
    REFUNDED = "refunded", _("Refunded")


class PaymentOutcome(StrEnum):
    """A provider status normalised across providers (domain.md §3, §4 status maps)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    REFUNDED = "refunded"


class AttemptStatus(models.TextChoices):
    """Status of one payment attempt (one provider payment)."""

    CREATING = "creating", _("Being created at the provider")
    PENDING = "pending", _("Pending at the provider")
    SUCCEEDED = "succeeded", _("Succeeded")
    CANCELED = "canceled", _("Canceled / declined")
    REFUNDED = "refunded", _("Refunded")
    ERROR = "error", _("Rejected by the provider")


PAYABLE = frozenset({OrderStatus.CREATED, OrderStatus.NOT_PAID})
LIVE_ATTEMPT = frozenset({AttemptStatus.CREATING, AttemptStatus.PENDING})
# Statuses that mean money was taken (a refund can follow any of them).
MONEY_TAKEN = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.MAKE_PENDING,
        OrderStatus.SUCCESSFUL,
        OrderStatus.MAKE_FAILED,
        OrderStatus.MANUAL_MAKE,
        OrderStatus.MAKE_UNKNOWN,
        OrderStatus.FAILED,
    }
)
# Paid orders that only staff can settle: make by hand, or refund (docs/operations.md "Needs attention").
NEEDS_ATTENTION = frozenset({OrderStatus.MAKE_FAILED, OrderStatus.MANUAL_MAKE, OrderStatus.MAKE_UNKNOWN})

# Progress rank: a provider event never lowers it (pending <-> not_paid share a rank: Pay again is allowed).
RANK = {
    OrderStatus.CREATED: 0,
    OrderStatus.PENDING: 1,
    OrderStatus.NOT_PAID: 1,
    OrderStatus.PAID: 2,
    OrderStatus.MAKE_PENDING: 3,
    OrderStatus.MANUAL_MAKE: 3,
    OrderStatus.FAILED: 3,
    OrderStatus.MAKE_FAILED: 4,
    OrderStatus.MAKE_UNKNOWN: 4,
    OrderStatus.SUCCESSFUL: 4,
    OrderStatus.REFUNDED: 5,
}

_ATTEMPT_NEXT = {
    # current attempt status -> outcomes that may move it, and where to
    AttemptStatus.CREATING: {
        PaymentOutcome.PENDING: AttemptStatus.PENDING,
        PaymentOutcome.SUCCEEDED: AttemptStatus.SUCCEEDED,
        PaymentOutcome.CANCELED: AttemptStatus.CANCELED,
    },
    AttemptStatus.PENDING: {
        PaymentOutcome.SUCCEEDED: AttemptStatus.SUCCEEDED,
        PaymentOutcome.CANCELED: AttemptStatus.CANCELED,
    },
    AttemptStatus.SUCCEEDED: {PaymentOutcome.REFUNDED: AttemptStatus.REFUNDED},
    AttemptStatus.ERROR: {
        PaymentOutcome.SUCCEEDED: AttemptStatus.SUCCEEDED,
        PaymentOutcome.CANCELED: AttemptStatus.CANCELED,
    },
}


def attempt_next_status(current: str, outcome: PaymentOutcome) -> str:
    """Attempt status after ``outcome``; returns ``current`` for a repeated or stale (out-of-order) event."""
    return _ATTEMPT_NEXT.get(AttemptStatus(current), {}).get(outcome, current)


@dataclass(frozen=True)
class Decision:
    """What to do with an order: its new ``status`` (may equal the current one), whether the caller must send
    the make command after commit (``dispense``), and a short ``reason`` for logs and the notification inbox."""

    status: str
    dispense: bool
    reason: str


def decide_on_payment(
    current: str,
    outcome: PaymentOutcome,
    *,
    is_latest_attempt: bool,
    amount_matches: bool,
    late: bool,
) -> Decision:
    """Apply a provider outcome of one attempt to an order in status ``current``.

    - SUCCEEDED on a not-yet-paid order: amount mismatch → ``failed``; after expiry or the dispense window
      (``late``) → ``manual_make``; otherwise ``paid`` → ``make_pending`` in the same step with ``dispense``
      (rule 4: only the transaction that moves paid → make_pending sends the make command).
    - CANCELED of the latest attempt of a ``pending`` order → ``not_paid`` (Pay again allowed).
    - REFUNDED of an order that took money → ``refunded``.
    - Anything else is a no-op (duplicates, stale events, events of superseded attempts).
    """
    status = OrderStatus(current)
    if outcome is PaymentOutcome.SUCCEEDED and status in (
        OrderStatus.CREATED,
        OrderStatus.PENDING,
        OrderStatus.NOT_PAID,
    ):
        if not amount_matches:
            return Decision(OrderStatus.FAILED, False, "amount or currency differs from the order")
        if late:
            return Decision(OrderStatus.MANUAL_MAKE, False, "paid after expiry or after the dispense window")
        return Decision(OrderStatus.MAKE_PENDING, True, "paid")
    if outcome is PaymentOutcome.CANCELED and status is OrderStatus.PENDING and is_latest_attempt:
        return Decision(OrderStatus.NOT_PAID, False, "payment canceled or declined")
    if outcome is PaymentOutcome.REFUNDED and status in MONEY_TAKEN:
        return Decision(OrderStatus.REFUNDED, False, "refunded")
    return Decision(status, False, "no change")


def decide_on_make(current: str, *, accepted: bool) -> Decision:
    """Result of the make command for an order in ``make_pending``: accepted keeps it (the drink is being made);
    rejected or unknown outcome (timeout/5xx — the drink may be made) → ``make_failed``, never resent."""
    if OrderStatus(current) is not OrderStatus.MAKE_PENDING:
        return Decision(current, False, "no change")
    if accepted:
        return Decision(OrderStatus.MAKE_PENDING, False, "make command accepted")
    return Decision(OrderStatus.MAKE_FAILED, False, "make command rejected or outcome unknown")
