"""The order state machine (domain.md §5): a transition table test and a property test that drives the pure
functions the way ``payment_apply``/``_record_created``/``order_dispense`` do."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
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
    decide_on_make,
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
    (A.CREATING, P.REFUNDED): A.CREATING,
    (A.PENDING, P.PENDING): A.PENDING,
    (A.PENDING, P.SUCCEEDED): A.SUCCEEDED,
    (A.PENDING, P.CANCELED): A.CANCELED,
    (A.PENDING, P.REFUNDED): A.PENDING,
    (A.SUCCEEDED, P.PENDING): A.SUCCEEDED,
    (A.SUCCEEDED, P.SUCCEEDED): A.SUCCEEDED,
    (A.SUCCEEDED, P.CANCELED): A.SUCCEEDED,
    (A.SUCCEEDED, P.REFUNDED): A.REFUNDED,
    (A.CANCELED, P.PENDING): A.CANCELED,
    (A.CANCELED, P.SUCCEEDED): A.CANCELED,
    (A.CANCELED, P.CANCELED): A.CANCELED,
    (A.CANCELED, P.REFUNDED): A.CANCELED,
    (A.REFUNDED, P.PENDING): A.REFUNDED,
    (A.REFUNDED, P.SUCCEEDED): A.REFUNDED,
    (A.REFUNDED, P.CANCELED): A.REFUNDED,
    (A.REFUNDED, P.REFUNDED): A.REFUNDED,
    (A.ERROR, P.PENDING): A.ERROR,
    (A.ERROR, P.SUCCEEDED): A.SUCCEEDED,
    (A.ERROR, P.CANCELED): A.CANCELED,
    (A.ERROR, P.REFUNDED): A.ERROR,
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
    (O.CREATED, P.REFUNDED, True, True, False, O.CREATED, False),
    (O.PENDING, P.REFUNDED, True, True, False, O.PENDING, False),
    (O.NOT_PAID, P.REFUNDED, True, True, False, O.NOT_PAID, False),
    (O.REFUNDED, P.REFUNDED, True, True, False, O.REFUNDED, False),
]


@pytest.mark.parametrize(("current", "outcome", "latest", "matches", "late", "status", "dispense"), ORDER_TABLE)
def test_decide_on_payment_table(current, outcome, latest, matches, late, status, dispense):
    decision = decide_on_payment(current, outcome, is_latest_attempt=latest, amount_matches=matches, late=late)
    assert decision.status == status
    assert decision.dispense is dispense
    assert decision.reason


@pytest.mark.parametrize("current", list(OrderStatus))
@pytest.mark.parametrize("accepted", [True, False])
def test_decide_on_make(current, accepted):
    decision = decide_on_make(current, accepted=accepted)
    assert decision.dispense is False
    if current is O.MAKE_PENDING:
        assert decision.status == (O.MAKE_PENDING if accepted else O.MAKE_FAILED)
    else:
        assert decision.status == current


# --- property test -----------------------------------------------------------------------------------------------


@dataclass
class Attempt:
    status: str = A.CREATING
    took_money: bool = False


@dataclass
class Model:
    order: str = O.CREATED
    attempts: list[Attempt] = field(default_factory=list)
    dispensed: int = 0
    make_outstanding: bool = False
    tainted: bool = False  # a success was applied with an amount mismatch or late
    last_provider: tuple | None = None


def _apply_provider(model: Model, index: int, outcome: PaymentOutcome, matches: bool, late: bool) -> None:
    """Mirror of ``payment_apply`` with its invariants checked."""
    attempt = model.attempts[index]
    new_attempt = attempt_next_status(attempt.status, outcome)
    assert new_attempt in set(AttemptStatus)
    if new_attempt == attempt.status:
        return  # duplicate or stale: no-op
    old_attempt = attempt.status
    # attempt statuses only move forward: terminal ones never change
    assert old_attempt not in (A.CANCELED, A.REFUNDED)
    if new_attempt == A.REFUNDED:
        assert old_attempt == A.SUCCEEDED
    attempt.status = new_attempt
    if new_attempt == A.SUCCEEDED:
        attempt.took_money = True
    is_latest = index == len(model.attempts) - 1

    before = model.order
    decision = decide_on_payment(before, outcome, is_latest_attempt=is_latest, amount_matches=matches, late=late)
    after = decision.status

    assert RANK[OrderStatus(after)] >= RANK[OrderStatus(before)], f"{before} -> {after} on {outcome}"
    if decision.dispense:
        model.dispensed += 1
        assert model.dispensed == 1, "dispensed twice"
        assert outcome is P.SUCCEEDED and matches and not late
        assert before in PAYABLE or before == O.PENDING
        assert after == O.MAKE_PENDING
        assert not model.tainted
        model.make_outstanding = True
    else:
        assert after != O.MAKE_PENDING or before == O.MAKE_PENDING
    if after == O.NOT_PAID and before != O.NOT_PAID:
        assert before == O.PENDING and is_latest and outcome is P.CANCELED
    if after == O.REFUNDED and before != O.REFUNDED:
        assert before in MONEY_TAKEN
        assert outcome is P.REFUNDED
        assert any(a.took_money for a in model.attempts)
        assert old_attempt == A.SUCCEEDED
    if after in (O.FAILED, O.MANUAL_MAKE) and before not in (O.FAILED, O.MANUAL_MAKE):
        assert outcome is P.SUCCEEDED and (not matches or late)
        model.tainted = True
    if after in MONEY_TAKEN:
        assert any(a.took_money for a in model.attempts)
    model.order = after


def _record_created(model: Model, index: int) -> None:
    """Mirror of ``_record_created``: the provider accepted the create call."""
    attempt = model.attempts[index]
    before = model.order
    attempt.status = attempt_next_status(attempt.status, P.PENDING)
    if model.order in PAYABLE and attempt.status == A.PENDING:
        model.order = O.PENDING
    assert RANK[OrderStatus(model.order)] >= RANK[OrderStatus(before)]


outcomes = st.sampled_from(list(PaymentOutcome))
events = st.lists(
    st.one_of(
        st.tuples(st.just("new")),
        st.tuples(st.just("created"), st.integers(0, 5)),
        st.tuples(st.just("provider"), st.integers(0, 5), outcomes, st.booleans(), st.booleans()),
        # bias towards the normal path: amount matches, on time, latest attempt
        st.tuples(st.just("provider"), st.just(-1), outcomes, st.just(True), st.just(False)),
        st.tuples(st.just("repeat")),
        st.tuples(st.just("make"), st.booleans()),
        st.tuples(st.just("error"), st.integers(0, 5)),
    ),
    max_size=40,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_no_sequence_goes_backwards_or_dispenses_twice(seq):
    model = Model()
    for event in seq:
        kind = event[0]
        if kind == "new":
            if model.order in PAYABLE:
                model.attempts.append(Attempt())
            continue
        if kind == "make":
            if model.make_outstanding:
                before = model.order
                decision = decide_on_make(before, accepted=event[1])
                assert decision.dispense is False
                assert RANK[OrderStatus(decision.status)] >= RANK[OrderStatus(before)]
                model.order = decision.status
                model.make_outstanding = False
            continue
        if kind == "repeat":
            if model.last_provider is not None:
                _apply_provider(model, *model.last_provider)
            continue
        if not model.attempts:
            continue
        index = event[1] % len(model.attempts) if event[1] >= 0 else len(model.attempts) - 1
        if kind == "created":
            _record_created(model, index)
        elif kind == "error":
            # create refused (``_release_claim(final=True)``) only while still creating
            if model.attempts[index].status == A.CREATING:
                model.attempts[index].status = A.ERROR
        else:
            _, _, outcome, matches, late = event
            model.last_provider = (index, outcome, matches, late)
            _apply_provider(model, index, outcome, matches, late)
    assert model.dispensed <= 1


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
