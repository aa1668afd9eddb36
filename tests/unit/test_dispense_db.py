"""The durable make command against the database (issue 9): claim by compare-and-set, outcome recorded, the
send survives a cancelled caller, the sweeper sends owed makes once, hands late ones to staff and flags makes
whose process died mid-call. Tmetr is an ``httpx.MockTransport``."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from coffee_payment.integrations.http import set_transport
from coffee_payment.orders.dispense import (
    _record_result,
    dispense_and_wait,
    dispense_sweep,
    order_dispense,
    send_budget_s,
)
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import MakeState, OrderStatus, PaymentOutcome
from coffee_payment.payments.services import payment_apply, payment_settle
from coffee_payment.serving import background
from tests.unit.mock_http import Recorder, run
from tests.unit.test_services_db import _attempt, _order, _payment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

MAKE_PATH = "/api/commander/v1/command/make"


@pytest.fixture
def tmetr():
    """Tmetr answering 200 to every make (``tmetr.reply`` can be replaced); the requests are recorded."""
    recorder = Recorder(lambda request: httpx.Response(200, json={"status": "accepted"}))
    set_transport(httpx.MockTransport(recorder))
    yield recorder
    set_transport(None)


def _makes(recorder: Recorder) -> list[httpx.Request]:
    return [r for r in recorder.requests if r.url.path.endswith(MAKE_PATH)]


def _paid_order(**kwargs) -> Order:
    """An order whose payment was just applied: make_pending with the make queued (not sent)."""
    order = _order(**kwargs)
    attempt = _attempt(order)
    assert payment_apply(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED)).dispense
    order.refresh_from_db()
    return order


def _state(order: Order) -> tuple[str, str]:
    order.refresh_from_db()
    return order.status, order.make_state


def test_settle_sends_one_make_and_records_acceptance(tmetr):
    order = _order()
    attempt = _attempt(order)
    result = run(payment_settle(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED)))
    assert result.dispense and result.order_status == OrderStatus.MAKE_PENDING
    assert _state(order) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)
    assert order.make_requested_at is not None
    assert len(_makes(tmetr)) == 1
    assert tmetr.body(-1)[0]["orderUuid"] == order.machine_uuid
    run(payment_settle(attempt_id=str(attempt.id), payment=_payment(PaymentOutcome.SUCCEEDED)))
    assert len(_makes(tmetr)) == 1


@pytest.mark.parametrize(("status", "state"), [(400, OrderStatus.MAKE_FAILED), (503, OrderStatus.MAKE_FAILED)])
def test_rejected_or_unavailable_make_is_failed_and_never_resent(tmetr, status, state):
    tmetr.reply = lambda request: httpx.Response(status, json={"errorMessage": "no"})
    order = _paid_order()
    assert run(order_dispense(order_id=str(order.id))) == state
    assert _state(order) == (state, MakeState.FAILED)
    run(order_dispense(order_id=str(order.id)))
    run(dispense_sweep())
    assert len(_makes(tmetr)) == 1


def test_a_second_sender_loses_the_claim(tmetr):
    order = _paid_order()

    async def both() -> list[str]:
        return await asyncio.gather(order_dispense(order_id=str(order.id)), order_dispense(order_id=str(order.id)))

    run(both())
    assert len(_makes(tmetr)) == 1
    assert _state(order) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)


def test_cancelled_caller_does_not_cancel_the_send(tmetr):
    """The status poll or notifier that won the payment goes away while Tmetr is slow: the make still completes
    and its outcome is recorded (the request's cancellation does not reach the send)."""
    release = asyncio.Event()

    async def slow_tmetr(request: httpx.Request) -> httpx.Response:
        tmetr.requests.append(request)
        await release.wait()
        return httpx.Response(200, json={"status": "accepted"})

    set_transport(httpx.MockTransport(slow_tmetr))
    order = _paid_order()

    async def scenario() -> None:
        caller = asyncio.create_task(dispense_and_wait(str(order.id)))
        while not tmetr.requests:
            await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert background.in_flight() == 1
        release.set()
        assert await background.drain(5) == 0

    run(scenario())
    assert _state(order) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)
    assert len(tmetr.requests) == 1


def test_sweeper_sends_an_owed_make_once(tmetr, settings):
    settings.DISPENSE_SWEEP_GRACE_S = 0
    order = _paid_order()
    report = run(dispense_sweep())
    assert report.sent == [str(order.id)]
    assert _state(order) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)
    assert run(dispense_sweep()).sent == []
    assert len(_makes(tmetr)) == 1


def test_sweeper_leaves_a_fresh_owed_make_to_its_process(tmetr, settings):
    settings.DISPENSE_SWEEP_GRACE_S = 60
    order = _paid_order()
    assert run(dispense_sweep()).sent == []
    assert _state(order) == (OrderStatus.MAKE_PENDING, MakeState.QUEUED)
    assert not _makes(tmetr)


def test_sweeper_hands_an_owed_make_past_the_window_to_staff(tmetr, settings):
    order = _paid_order()
    Order.objects.filter(pk=order.pk).update(
        paid_at=timezone.now() - timedelta(seconds=settings.FAST_TRACK_LIMIT_S + 1)
    )
    report = run(dispense_sweep())
    assert report.expired == [str(order.id)]
    assert _state(order) == (OrderStatus.MANUAL_MAKE, MakeState.EXPIRED)
    assert not _makes(tmetr)


def test_sweeper_flags_a_make_whose_process_died_mid_call(tmetr, caplog):
    order = _paid_order()
    stuck_since = timezone.now() - timedelta(seconds=send_budget_s() + 11)
    Order.objects.filter(pk=order.pk).update(make_state=MakeState.SENDING, make_requested_at=stuck_since)
    with caplog.at_level(logging.ERROR, logger="coffee_payment.orders.dispense"):
        report = run(dispense_sweep())
    assert report.unknown == [str(order.id)]
    assert _state(order) == (OrderStatus.MAKE_UNKNOWN, MakeState.UNKNOWN)
    assert any("dispense.outcome_unknown" in r.message and str(order.id) in r.message for r in caplog.records)
    assert not _makes(tmetr), "an unknown outcome is never resent"
    run(dispense_sweep())
    assert not _makes(tmetr)


def test_sweeper_leaves_a_make_in_flight_within_its_budget(tmetr):
    order = _paid_order()
    Order.objects.filter(pk=order.pk).update(make_state=MakeState.SENDING, make_requested_at=timezone.now())
    assert run(dispense_sweep()).unknown == []
    assert _state(order) == (OrderStatus.MAKE_PENDING, MakeState.SENDING)


def test_late_answer_after_the_flag_changes_nothing(tmetr, caplog):
    order = _paid_order()
    Order.objects.filter(pk=order.pk).update(make_state=MakeState.UNKNOWN, status=OrderStatus.MAKE_UNKNOWN)
    with caplog.at_level(logging.ERROR, logger="coffee_payment.orders.dispense"):
        assert _record_result(str(order.id), accepted=True, detail="accepted") == OrderStatus.MAKE_UNKNOWN
    assert "dispense.late_answer" in caplog.text


def test_reconcile_payments_runs_the_sweeper(tmetr, settings):
    from django.core.management import call_command

    settings.DISPENSE_SWEEP_GRACE_S = 0
    order = _paid_order()
    call_command("reconcile_payments")
    assert _state(order) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)
    assert len(_makes(tmetr)) == 1
