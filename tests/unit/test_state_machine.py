"""Property test (hypothesis state machine) of "paid means made" (issue 9) over the real decision code.

It drives the pure functions the services use — ``decide_payment`` (payment-id, reference, duplicate-refund and
order rules), ``make_state_after_payment``, ``make_may_send`` (the send claim), ``decide_on_make`` and
``decide_on_sweep`` — through provider moves, notifications (replayed, out of order), polls, sends, Tmetr answers,
sweeps and process deaths (between commit and send, and mid-call). Invariants: never more than one make per
order, a status never goes backwards, and once everything settles every paid order ends made (accepted),
``make_failed``, ``make_unknown``, ``manual_make``, ``failed`` or ``refunded`` — never ``make_pending`` with an
unsent or unanswered make.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from coffee_payment.orders.state import (
    PAYABLE,
    RANK,
    AttemptStatus,
    MakeState,
    OrderStatus,
    PaymentFacts,
    PaymentOutcome,
    attempt_next_status,
    decide_on_make,
    decide_on_sweep,
    decide_payment,
    make_may_send,
    make_state_after_payment,
)

pytestmark = pytest.mark.timeout(120)

O, A, P, M = OrderStatus, AttemptStatus, PaymentOutcome, MakeState
WINDOW_S = 300.0
BUDGET_S = 19.0  # send budget + margin
PROVIDER_MOVES = {P.PENDING: (P.SUCCEEDED, P.CANCELED), P.SUCCEEDED: (P.REFUNDED,)}
SETTLED_PAID = {O.MAKE_FAILED, O.MAKE_UNKNOWN, O.MANUAL_MAKE, O.FAILED, O.REFUNDED, O.SUCCESSFUL}


@dataclass
class Attempt:
    attempt_id: str
    status: str = A.CREATING
    payment_id: str | None = None
    history: list[PaymentOutcome] = field(default_factory=lambda: [P.PENDING])  # the provider's truth, in order
    created_at: float = 0.0


class PaidMeansMade(RuleBasedStateMachine):
    """One order, its attempts at the provider, and the processes that send its make."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.status: str = O.CREATED
        self.make_state: str = M.NONE
        self.paid_at: float | None = None
        self.sending_at: float | None = None
        self.attempts: list[Attempt] = []
        self.makes_sent = 0
        self.in_flight = False  # a live process is waiting for Tmetr's answer

    # --- the customer and the provider ---------------------------------------------------------------------

    @precondition(lambda self: self.status in PAYABLE and len(self.attempts) < 4)
    @rule()
    def tap_pay(self) -> None:
        self.attempts.append(Attempt(f"att-{len(self.attempts)}", created_at=self.now))

    @rule(index=st.integers(0, 3))
    def provider_created(self, index: int) -> None:
        """``_record_created``: the provider's answer to create arrived."""
        if index >= len(self.attempts):
            return
        attempt = self.attempts[index]
        attempt.payment_id = f"pay-{index}"
        attempt.status = attempt_next_status(attempt.status, P.PENDING)
        if self.status in PAYABLE and attempt.status == A.PENDING:
            self.status = O.PENDING

    @rule(index=st.integers(0, 3), choice=st.integers(0, 1))
    def provider_moves(self, index: int, choice: int) -> None:
        """The payment changes at the provider (paid, declined, refunded)."""
        if index >= len(self.attempts):
            return
        history = self.attempts[index].history
        moves = PROVIDER_MOVES.get(history[-1], ())
        if moves:
            history.append(moves[choice % len(moves)])

    @rule(
        index=st.integers(0, 3),
        back=st.integers(0, 3),
        verified=st.booleans(),
        matches=st.booleans() | st.just(True),
        reference=st.sampled_from(["own", "none", "other"]),
        foreign_id=st.booleans(),
    )
    def provider_answer(self, index, back, verified, matches, reference, foreign_id) -> None:
        """A notification, a poll or the reconciler: a verified answer is the provider's current truth; an
        unverified one may replay any earlier status (out of order, replayed)."""
        if index >= len(self.attempts):
            return
        attempt = self.attempts[index]
        outcome = attempt.history[-1] if verified else attempt.history[max(0, len(attempt.history) - 1 - back)]
        payment_id = "pay-foreign" if foreign_id else f"pay-{index}"
        ref = {"own": attempt.attempt_id, "none": None, "other": "att-other"}[reference]
        self._apply(attempt, outcome, payment_id, ref, matches)

    def _apply(self, attempt: Attempt, outcome: PaymentOutcome, payment_id: str, ref: str | None, matches: bool):
        before = self.status
        decided = decide_payment(
            PaymentFacts(
                order_status=self.status,
                attempt_id=attempt.attempt_id,
                attempt_status=attempt.status,
                attempt_payment_id=attempt.payment_id,
                payment_id=payment_id,
                payment_reference=ref,
                outcome=outcome,
                is_latest_attempt=attempt is self.attempts[-1],
                other_attempt_succeeded=any(a.status == A.SUCCEEDED for a in self.attempts if a is not attempt),
                amount_matches=matches,
                late=self.now - attempt.created_at > WINDOW_S,
            )
        )
        if decided.attempt_status != attempt.status:
            assert attempt.payment_id in (None, payment_id), "a foreign payment moved an attempt"
            assert ref in (None, attempt.attempt_id), "another attempt's payment moved this one"
            attempt.status, attempt.payment_id = decided.attempt_status, payment_id
        decision = decided.order
        if decision.status == self.status:
            assert not decision.dispense
            return
        assert RANK[O(decision.status)] >= RANK[O(before)], f"{before} -> {decision.status}"
        if decision.dispense:
            assert outcome is P.SUCCEEDED and matches
            self.paid_at = self.now
        self.make_state = make_state_after_payment(decision.status, self.make_state, dispense=decision.dispense)
        self.status = decision.status

    # --- the make: send, answer, deaths, sweeps ----------------------------------------------------------------

    @precondition(lambda self: make_may_send(self.status, self.make_state))
    @rule()
    def send(self) -> None:
        """The committing process (or the sweeper) wins the claim ``queued → sending`` and calls Tmetr."""
        self._claim_and_send()

    def _claim_and_send(self) -> None:
        assert make_may_send(self.status, self.make_state)
        self.make_state, self.sending_at = M.SENDING, self.now
        self.makes_sent += 1
        self.in_flight = True

    @precondition(lambda self: self.in_flight)
    @rule(accepted=st.booleans())
    def tmetr_answers(self, accepted: bool) -> None:
        self.in_flight = False
        step = decide_on_make(self.status, self.make_state, accepted=accepted, detail="answer")
        if step is not None:
            assert RANK[O(step.status)] >= RANK[O(self.status)]
            self.status, self.make_state = step.status, step.make_state

    @precondition(lambda self: self.in_flight)
    @rule()
    def process_dies_mid_call(self) -> None:
        self.in_flight = False

    @rule(seconds=st.sampled_from([0.5, 5.0, 20.0, 400.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def sweep(self) -> None:
        if self.in_flight and self.now - (self.sending_at or 0) <= BUDGET_S:
            return  # a live call is bounded by the send budget: the sweeper cannot see it as stuck yet
        self.in_flight = False
        step = decide_on_sweep(
            self.status,
            self.make_state,
            paid_for_s=self.now - (self.paid_at or 0.0),
            sending_for_s=self.now - (self.sending_at or 0.0),
            dispense_window_s=WINDOW_S,
            send_budget_s=BUDGET_S,
        )
        if step is None:
            return
        if step.make_state == M.SENDING:
            self._claim_and_send()
        else:
            assert RANK[O(step.status)] >= RANK[O(self.status)]
            self.status, self.make_state = step.status, step.make_state

    # --- invariants -----------------------------------------------------------------------------------------

    @invariant()
    def at_most_one_make(self) -> None:
        assert self.makes_sent <= 1

    @invariant()
    def make_state_matches_what_was_sent(self) -> None:
        if self.make_state in (M.SENDING, M.ACCEPTED, M.FAILED, M.UNKNOWN):
            assert self.makes_sent == 1
        if self.make_state in (M.QUEUED, M.EXPIRED, M.CANCELED, M.NONE):
            assert self.makes_sent == 0
        if self.status == O.MAKE_UNKNOWN:
            assert self.make_state == M.UNKNOWN

    def teardown(self) -> None:
        """Let everything settle: the live call ends or its process dies, time passes, the sweeper runs twice."""
        if self.in_flight:
            self.tmetr_answers(accepted=True)
        for _ in range(2):
            self.now += WINDOW_S + BUDGET_S + 1
            self.sweep()
            if self.in_flight:
                self.process_dies_mid_call()
        self.now += BUDGET_S + 1
        self.sweep()
        assert self.makes_sent <= 1
        if self.status == O.MAKE_PENDING:
            assert self.make_state == M.ACCEPTED, "make_pending with nothing sent or no outcome"
            assert self.makes_sent == 1
        elif self.status not in (O.CREATED, O.PENDING, O.NOT_PAID):
            assert self.status in SETTLED_PAID, self.status


TestPaidMeansMade = PaidMeansMade.TestCase
TestPaidMeansMade.settings = settings(
    max_examples=400, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
