"""The order state machine (docs/domain.md §5) as pure functions: no I/O, no ORM.

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
    """A provider status normalised across providers (docs/domain.md §3, §4 status maps)."""

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
_NOT_YET_PAID = frozenset({OrderStatus.CREATED, OrderStatus.PENDING, OrderStatus.NOT_PAID})
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
    # A REFUNDED that reaches a not-yet-succeeded attempt means the CONFIRMED/succeeded notice is late or lost:
    # the refund already happened and wins (issue 9; TBank sends statuses in no guaranteed order, docs/domain.md §4).
    AttemptStatus.CREATING: {
        PaymentOutcome.PENDING: AttemptStatus.PENDING,
        PaymentOutcome.SUCCEEDED: AttemptStatus.SUCCEEDED,
        PaymentOutcome.CANCELED: AttemptStatus.CANCELED,
        PaymentOutcome.REFUNDED: AttemptStatus.REFUNDED,
    },
    AttemptStatus.PENDING: {
        PaymentOutcome.SUCCEEDED: AttemptStatus.SUCCEEDED,
        PaymentOutcome.CANCELED: AttemptStatus.CANCELED,
        PaymentOutcome.REFUNDED: AttemptStatus.REFUNDED,
    },
    AttemptStatus.SUCCEEDED: {PaymentOutcome.REFUNDED: AttemptStatus.REFUNDED},
    # A decline is not always the end of a payment: TBank's form lets the customer try another card after
    # REJECTED/AUTH_FAIL (until ATTEMPTS_EXPIRED), and the same payment then ends CONFIRMED. The provider's verified
    # success means money was taken: it must not be dropped as a stale event.
    AttemptStatus.CANCELED: {PaymentOutcome.SUCCEEDED: AttemptStatus.SUCCEEDED},
    AttemptStatus.ERROR: {
        PaymentOutcome.SUCCEEDED: AttemptStatus.SUCCEEDED,
        PaymentOutcome.CANCELED: AttemptStatus.CANCELED,
        PaymentOutcome.REFUNDED: AttemptStatus.REFUNDED,
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
      (docs/domain.md §5 rule 4: only the transaction that moves paid → make_pending sends the make command).
    - CANCELED of the latest attempt of a ``pending`` order → ``not_paid`` (Pay again allowed).
    - REFUNDED of an order that took money → ``refunded``; of the latest attempt of an order not yet paid (the
      refund arrived before the success) → ``refunded`` too, never a dispense.
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
    if outcome is PaymentOutcome.REFUNDED and status in _NOT_YET_PAID and is_latest_attempt:
        return Decision(OrderStatus.REFUNDED, False, "refunded before the payment's success reached us")
    return Decision(status, False, "no change")


@dataclass(frozen=True)
class PaymentFacts:
    """Everything the decision on one verified provider answer depends on, read under the order's row lock.

    ``attempt_payment_id`` is the provider payment id stored when we created the attempt (None while creating);
    ``payment_reference`` is our attempt id as the provider echoes it (YooKassa ``metadata.attempt_id``, TBank
    ``OrderId``) or None when the payment carries none; ``other_attempt_succeeded``: another attempt of the same
    order already took money."""

    order_status: str
    attempt_id: str
    attempt_status: str
    attempt_payment_id: str | None
    payment_id: str
    payment_reference: str | None
    outcome: PaymentOutcome
    is_latest_attempt: bool
    other_attempt_succeeded: bool
    amount_matches: bool
    late: bool


@dataclass(frozen=True)
class PaymentDecision:
    """The attempt's status afterwards and the order decision (status, dispense, reason)."""

    attempt_status: str
    order: Decision


def decide_payment(facts: PaymentFacts) -> PaymentDecision:
    """The one decision on a verified provider answer, shared by webhooks, polls and the reconciler (issue 9).

    A payment is matched to the attempt by the provider payment id stored at creation; our reference (metadata)
    is a cross-check when present, never a requirement (docs/domain.md §3). A repeated or out-of-order status is a
    no-op; a refund of a duplicate payment leaves the order on the payment it stands on."""
    unchanged = facts.attempt_status
    if facts.attempt_payment_id and facts.attempt_payment_id != facts.payment_id:
        return PaymentDecision(unchanged, Decision(facts.order_status, False, "payment id differs from the attempt's"))
    if facts.payment_reference and facts.payment_reference != facts.attempt_id:
        return PaymentDecision(unchanged, Decision(facts.order_status, False, "payment belongs to another attempt"))
    attempt_status = attempt_next_status(facts.attempt_status, facts.outcome)
    if attempt_status == facts.attempt_status:
        return PaymentDecision(unchanged, Decision(facts.order_status, False, "duplicate or stale status"))
    if facts.outcome is PaymentOutcome.REFUNDED and facts.other_attempt_succeeded:
        # A duplicate payment was refunded; the payment the order stands on is still in force.
        return PaymentDecision(attempt_status, Decision(facts.order_status, False, "refund of a duplicate payment"))
    decision = decide_on_payment(
        facts.order_status,
        facts.outcome,
        is_latest_attempt=facts.is_latest_attempt,
        amount_matches=facts.amount_matches,
        late=facts.late,
    )
    return PaymentDecision(attempt_status, decision)


# --- the make command (durable dispense, docs/domain.md §5 rule 4) -------------------------------------------------


class MakeState(models.TextChoices):
    """Where an order's make command is. ``queued`` is committed with the move to ``make_pending``; ``sending``
    is committed before the HTTP call, so ``queued`` proves nothing left the building (safe to send) and
    ``sending`` with no outcome past the budget means the process died mid-call (outcome unknown)."""

    NONE = "", _("No make command owed")
    QUEUED = "queued", _("Owed, not sent yet")
    SENDING = "sending", _("Sending started")
    ACCEPTED = "accepted", _("Accepted by Tmetr")
    FAILED = "failed", _("Rejected or timed out (never resent)")
    UNKNOWN = "unknown", _("Sent, outcome unknown: the process died mid-call (never resent)")
    EXPIRED = "expired", _("Not sent: the dispense window passed before it could be sent")
    CANCELED = "canceled", _("Not sent: the payment was refunded first")


@dataclass(frozen=True)
class MakeStep:
    """An order's status and make state after a make event, with a ``reason`` for logs and ``make_result``."""

    status: str
    make_state: str
    reason: str


def make_may_send(status: str, make_state: str) -> bool:
    """True when the make command is owed and not sent: the only state from which a send may be claimed."""
    return status == OrderStatus.MAKE_PENDING and make_state == MakeState.QUEUED


def decide_on_make(status: str, make_state: str, *, accepted: bool, detail: str) -> MakeStep | None:
    """Tmetr's answer to a make we were ``sending``: accepted keeps ``make_pending`` (the drink is being made);
    rejected or timeout/5xx (the drink may be made) → ``make_failed``, never resent. None when the make is no
    longer ``sending`` (the sweeper already flagged it): the caller logs the late answer and changes nothing. An
    order that left ``make_pending`` meanwhile (refunded) keeps its status."""
    if make_state != MakeState.SENDING:
        return None
    if accepted:
        return MakeStep(status, MakeState.ACCEPTED, detail)
    new_status = OrderStatus.MAKE_FAILED if status == OrderStatus.MAKE_PENDING else status
    return MakeStep(new_status, MakeState.FAILED, detail)


def decide_on_sweep(
    status: str,
    make_state: str,
    *,
    paid_for_s: float,
    sending_for_s: float,
    dispense_window_s: float,
    send_budget_s: float,
) -> MakeStep | None:
    """What the sweeper does with one order (seconds since payment and since sending started):

    - ``queued`` past the dispense window → ``manual_make`` (staff make or refund; the customer may have left);
    - ``queued`` otherwise → a step to ``sending``: the sweeper sends it (its claim is a compare-and-set);
    - ``sending`` past the send budget → ``make_unknown``: never resent, flagged for staff;
    - anything else → None."""
    if make_may_send(status, make_state):
        if paid_for_s > dispense_window_s:
            return MakeStep(OrderStatus.MANUAL_MAKE, MakeState.EXPIRED, "make not sent within the dispense window")
        return MakeStep(status, MakeState.SENDING, "owed make sent by the sweeper")
    if make_state == MakeState.SENDING and sending_for_s > send_budget_s:
        new_status = OrderStatus.MAKE_UNKNOWN if status == OrderStatus.MAKE_PENDING else status
        return MakeStep(new_status, MakeState.UNKNOWN, "make sent, outcome unknown (the sending process died)")
    return None


def make_state_after_payment(status: str, make_state: str, *, dispense: bool) -> str:
    """The make state that goes with a payment decision: ``queued`` when this decision owes the make (committed
    in the same transaction), ``canceled`` when a refund beat a queued make, otherwise unchanged."""
    if dispense:
        return MakeState.QUEUED
    if make_state == MakeState.QUEUED and status != OrderStatus.MAKE_PENDING:
        return MakeState.CANCELED
    return make_state
