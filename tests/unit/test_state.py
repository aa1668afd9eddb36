"""The order state machine (docs/domain.md §5): transition tables and a rank property. The state-machine property
test over payments, makes, sweeps and process deaths is ``test_state_machine.py``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffee_payment.orders.state import (
    LIVE_ATTEMPT,
    MONEY_TAKEN,
    PAYABLE,
    RANK,
    AttemptStatus,
    OrderStatus,
    PaymentOutcome,
    attempt_next_status,
    decide_on_payment,
)

pytestmark = pytest.mark.timeout(120)

O = OrderStatus
A = AttemptStatus
P = PaymentOutcome


# --- plain tables ----------------------------------------------------------------------------------------------


def test_every_order_status_has_a_rank():
    assert set(RANK) == set(OrderStatus)


def test_sets():
    assert {O.CREATED, O.NOT_PAID} == PAYABLE
    assert {A.CREATING, A.PENDING} == LIVE_ATTEMPT
    assert O.CREATED not in MONEY_TAKEN and O.PENDING not in MONEY_TAKEN and O.NOT_PAID not in MONEY_TAKEN
    assert O.REFUNDED not in MONEY_TAKEN


ATTEMPT_TABLE = {
    (A.CREATING, P.PENDING): A.PENDING,
    (A.CREATING, P.SUCCEEDED): A.SUCCEEDED,
    (A.CREATING, P.CANCELED): A.CANCELED,
    (A.CREATING, P.REFUNDED): A.REFUNDED,
    (A.PENDING, P.PENDING): A.PENDING,
    (A.PENDING, P.SUCCEEDED): A.SUCCEEDED,
    (A.PENDING, P.CANCELED): A.CANCELED,
    (A.PENDING, P.REFUNDED): A.REFUNDED,
    (A.SUCCEEDED, P.PENDING): A.SUCCEEDED,
    (A.SUCCEEDED, P.SUCCEEDED): A.SUCCEEDED,
    (A.SUCCEEDED, P.CANCELED): A.SUCCEEDED,
    (A.SUCCEEDED, P.REFUNDED): A.REFUNDED,
    (A.CANCELED, P.PENDING): A.CANCELED,
    (A.CANCELED, P.SUCCEEDED): A.SUCCEEDED,  # a declined card retried on the same TBank payment
    (A.CANCELED, P.CANCELED): A.CANCELED,
    (A.CANCELED, P.REFUNDED): A.CANCELED,
    (A.REFUNDED, P.PENDING): A.REFUNDED,
    (A.REFUNDED, P.SUCCEEDED): A.REFUNDED,
    (A.REFUNDED, P.CANCELED): A.REFUNDED,
    (A.REFUNDED, P.REFUNDED): A.REFUNDED,
    (A.ERROR, P.PENDING): A.ERROR,
    (A.ERROR, P.SUCCEEDED): A.SUCCEEDED,
    (A.ERROR, P.CANCELED): A.CANCELED,
    (A.ERROR, P.REFUNDED): A.REFUNDED,
}


def test_attempt_table_is_complete():
    assert set(ATTEMPT_TABLE) == {(a, p) for a in AttemptStatus for p in PaymentOutcome}


@pytest.mark.parametrize(("current", "outcome", "expected"), [(a, p, n) for (a, p), n in ATTEMPT_TABLE.items()])
def test_attempt_next_status(current, outcome, expected):
    assert attempt_next_status(current, outcome) == expected
    assert attempt_next_status(str(current.value), outcome) == expected


# (current, outcome, latest, amount_matches, late) -> (status, dispense)
ORDER_TABLE = [
    (O.CREATED, P.SUCCEEDED, True, True, False, O.MAKE_PENDING, True),
    (O.PENDING, P.SUCCEEDED, True, True, False, O.MAKE_PENDING, True),
    (O.NOT_PAID, P.SUCCEEDED, True, True, False, O.MAKE_PENDING, True),
    (O.PENDING, P.SUCCEEDED, False, True, False, O.MAKE_PENDING, True),
    (O.PENDING, P.SUCCEEDED, True, False, False, O.FAILED, False),
    (O.PENDING, P.SUCCEEDED, True, False, True, O.FAILED, False),
    (O.PENDING, P.SUCCEEDED, True, True, True, O.MANUAL_MAKE, False),
    (O.NOT_PAID, P.SUCCEEDED, True, True, True, O.MANUAL_MAKE, False),
    (O.CREATED, P.SUCCEEDED, True, False, False, O.FAILED, False),
    (O.PAID, P.SUCCEEDED, True, True, False, O.PAID, False),
    (O.MAKE_PENDING, P.SUCCEEDED, True, True, False, O.MAKE_PENDING, False),
    (O.SUCCESSFUL, P.SUCCEEDED, True, True, False, O.SUCCESSFUL, False),
    (O.MANUAL_MAKE, P.SUCCEEDED, True, True, False, O.MANUAL_MAKE, False),
    (O.FAILED, P.SUCCEEDED, True, True, False, O.FAILED, False),
    (O.MAKE_FAILED, P.SUCCEEDED, True, True, False, O.MAKE_FAILED, False),
    (O.REFUNDED, P.SUCCEEDED, True, True, False, O.REFUNDED, False),
    (O.PENDING, P.CANCELED, True, True, False, O.NOT_PAID, False),
    (O.PENDING, P.CANCELED, False, True, False, O.PENDING, False),
    (O.CREATED, P.CANCELED, True, True, False, O.CREATED, False),
    (O.NOT_PAID, P.CANCELED, True, True, False, O.NOT_PAID, False),
    (O.MAKE_PENDING, P.CANCELED, True, True, False, O.MAKE_PENDING, False),
    (O.SUCCESSFUL, P.CANCELED, True, True, False, O.SUCCESSFUL, False),
    (O.PENDING, P.PENDING, True, True, False, O.PENDING, False),
    (O.CREATED, P.PENDING, True, True, False, O.CREATED, False),
    (O.NOT_PAID, P.PENDING, True, True, False, O.NOT_PAID, False),
    (O.PAID, P.REFUNDED, True, True, False, O.REFUNDED, False),
    (O.MAKE_PENDING, P.REFUNDED, True, True, False, O.REFUNDED, False),
    (O.SUCCESSFUL, P.REFUNDED, True, True, False, O.REFUNDED, False),
    (O.MAKE_FAILED, P.REFUNDED, True, True, False, O.REFUNDED, False),
    (O.MANUAL_MAKE, P.REFUNDED, True, True, False, O.REFUNDED, False),
    (O.FAILED, P.REFUNDED, True, True, False, O.REFUNDED, False),
    # a refund that reaches us before the success wins: no dispense (issue 9)
    (O.CREATED, P.REFUNDED, True, True, False, O.REFUNDED, False),
    (O.PENDING, P.REFUNDED, True, True, False, O.REFUNDED, False),
    (O.NOT_PAID, P.REFUNDED, True, True, False, O.REFUNDED, False),
    (O.PENDING, P.REFUNDED, False, True, False, O.PENDING, False),
    (O.MAKE_UNKNOWN, P.REFUNDED, True, True, False, O.REFUNDED, False),
    (O.MAKE_UNKNOWN, P.SUCCEEDED, True, True, False, O.MAKE_UNKNOWN, False),
    (O.REFUNDED, P.REFUNDED, True, True, False, O.REFUNDED, False),
]


@pytest.mark.parametrize(("current", "outcome", "latest", "matches", "late", "status", "dispense"), ORDER_TABLE)
def test_decide_on_payment_table(current, outcome, latest, matches, late, status, dispense):
    decision = decide_on_payment(current, outcome, is_latest_attempt=latest, amount_matches=matches, late=late)
    assert decision.status == status
    assert decision.dispense is dispense
    assert decision.reason


outcomes = st.sampled_from(list(PaymentOutcome))


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(outcomes, st.booleans(), st.booleans(), st.booleans()), max_size=30),
    st.sampled_from(list(OrderStatus)),
)
def test_decide_on_payment_never_lowers_rank_from_any_status(steps, start):
    status = start
    dispensed = 0
    for outcome, latest, matches, late in steps:
        decision = decide_on_payment(status, outcome, is_latest_attempt=latest, amount_matches=matches, late=late)
        assert RANK[OrderStatus(decision.status)] >= RANK[OrderStatus(status)]
        if decision.dispense:
            dispensed += 1
            assert matches and not late
        status = decision.status
    assert dispensed <= 1
