"""The make command as durable work (docs/domain.md §5 rule 4; issue 9 "Paid means made").

Life of one make, each step committed before the next:

1. ``queued`` — committed in the same transaction that moves the order ``paid → make_pending`` (``payment_apply``).
2. ``sending`` — a compare-and-set ``queued → sending`` (with ``make_requested_at``) committed *before* the HTTP
   call: only the one caller that wins it sends, across workers and pods.
3. ``accepted`` / ``failed`` — Tmetr's answer (``failed`` = rejected, or timeout/5xx: the drink may be made,
   never resent) → order stays ``make_pending`` / becomes ``make_failed``.

The send runs in a task of its own (:func:`dispense`), created in a fresh context on the worker's event loop:
a client disconnect or a cancelled view cannot abort it, and the worker's graceful drain (TERM, INT, recycle,
HUP) waits for it (:func:`drain`). What a dying process leaves behind the sweeper (:func:`dispense_sweep`,
run by ``reconcile_payments`` and ``sweep_dispenses``) finishes: a ``queued`` make is sent (or handed to staff
as ``manual_make`` past the dispense window); a make stuck in ``sending`` past the Tmetr budget plus the sweep
grace had its process die mid-call — it becomes ``make_unknown`` with an ERROR line ``dispense.outcome_unknown``,
never resent (Tmetr's make is not idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from coffee_payment.dbsteps import run_db_step
from coffee_payment.integrations.tmetr import MakeCommand, TmetrError, TmetrUnavailable, tmetr_client
from coffee_payment.monitoring.metrics import record_dispense
from coffee_payment.monitoring.requestid import REQUEST_ID
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import MakeState, MakeStep, OrderStatus, decide_on_make, decide_on_sweep
from coffee_payment.serving import background

logger = logging.getLogger(__name__)


def send_budget_s() -> float:
    """Seconds one make call may take at most (Tmetr connect + read timeouts + 1 s): the hard bound of the send."""
    return settings.TMETR_CONNECT_TIMEOUT_S + settings.TMETR_READ_TIMEOUT_S + 1.0


def stuck_after_s() -> float:
    """Seconds after which a make still ``sending`` had its process die mid-call: the send budget plus the
    sweep grace (``DISPENSE_SWEEP_GRACE_S``) as a margin."""
    return send_budget_s() + settings.DISPENSE_SWEEP_GRACE_S


# --- database steps --------------------------------------------------------------------------------------------


def _claim_send(order_id: str) -> MakeCommand | None:
    """Compare-and-set ``queued → sending``; the command to send, or None when someone else owns it."""
    won = Order.objects.filter(pk=order_id, status=OrderStatus.MAKE_PENDING, make_state=MakeState.QUEUED).update(
        make_state=MakeState.SENDING, make_requested_at=timezone.now(), updated_at=timezone.now()
    )
    if not won:
        return None
    order = Order.objects.select_related("device").get(pk=order_id)
    return MakeCommand(
        device_id=order.device.tmetr_device_id,
        order_uuid=order.machine_uuid,
        drink_uuid=order.drink_no,
        size=settings.TMETR_SIZE_WORDS[order.size],
        price_kopecks=order.price_kopecks,
    )


def _record_result(order_id: str, *, accepted: bool, detail: str) -> str:
    """Store Tmetr's answer if the make is still ``sending``; returns the order status afterwards."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        step = decide_on_make(order.status, order.make_state, accepted=accepted, detail=detail)
        if step is None:
            logger.error(
                "dispense.late_answer order=%s: Tmetr answered %r after the make was marked %s; not changed",
                order_id,
                detail,
                order.make_state,
            )
            return order.status
        _apply_step(order, step)
        return order.status


def _apply_step(order: Order, step: MakeStep) -> None:
    order.status = step.status
    order.make_state = step.make_state
    order.make_result = step.reason[:500]
    order.save(update_fields=["status", "make_state", "make_result", "updated_at"])


# --- the send --------------------------------------------------------------------------------------------------


async def order_dispense(*, order_id: str) -> str:
    """Send the make command an order owes, exactly once (claimed by compare-and-set); record the outcome.

    Returns the order status afterwards (unchanged when another caller owns the send). Tmetr errors are recorded
    (``make_failed``), never raised; a database error is raised and the sweeper finishes the make."""
    command = await run_db_step(_claim_send, order_id)
    if command is None:
        return await run_db_step(lambda: Order.objects.values_list("status", flat=True).get(pk=order_id))
    record_dispense("sent")
    try:
        async with asyncio.timeout(send_budget_s()):
            await tmetr_client().make(command)
    except (TmetrError, TimeoutError) as exc:
        detail = exc.detail if isinstance(exc, TmetrError) else "Tmetr make: no answer within the send budget"
        logger.error("dispense.failed order=%s: make command failed (not resent): %s", order_id, detail)
        # The metric tells a refusal from a timeout/5xx (the drink may be made); both are make_failed for staff.
        record_dispense(
            "failed" if isinstance(exc, TmetrError) and not isinstance(exc, TmetrUnavailable) else "unknown"
        )
        return await run_db_step(_record_result, order_id, accepted=False, detail=detail)
    logger.info("dispense.accepted order=%s device=%s", order_id, command.device_id)
    record_dispense("accepted")
    return await run_db_step(_record_result, order_id, accepted=True, detail="accepted")


def _test_fault(name: str, order_id: str) -> None:
    """The test-only fault hook (``SERVING_TEST_FAULTS``; ``check --deploy`` refuses it): die right here."""
    if name in settings.SERVING_TEST_FAULTS:
        logger.warning("test fault %s: killing process %s before the make of order %s", name, os.getpid(), order_id)
        os.kill(os.getpid(), signal.SIGKILL)


def dispense(order_id: str) -> asyncio.Task[str]:
    """Start sending the make command of ``order_id`` as background work that outlives the calling request and
    that the worker's drain waits for (``coffee_payment.serving.background``). Await it through
    ``asyncio.shield`` to get the status without letting a cancelled caller cancel the send."""
    _test_fault("die_before_make", order_id)
    return background.start(order_dispense(order_id=order_id), name=f"make order {order_id}", carry=(REQUEST_ID,))


async def dispense_and_wait(order_id: str) -> str | None:
    """:func:`dispense`, then wait for its outcome; the order status afterwards (None if the task failed: it is
    logged, and the order keeps its committed make state for the sweeper). A cancellation of the caller (client
    gone, notifier timeout) leaves the send running."""
    task = dispense(order_id)
    try:
        return await asyncio.shield(task)
    except Exception:  # not CancelledError (a BaseException): a cancelled caller still sees its cancellation
        return None


# --- the sweeper -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did: makes ``sent`` (order ids), ``expired`` to manual_make, flagged ``unknown``."""

    sent: list[str]
    expired: list[str]
    unknown: list[str]


def _sweep_candidates() -> list[str]:
    now = timezone.now()
    queued = Order.objects.filter(
        status=OrderStatus.MAKE_PENDING,
        make_state=MakeState.QUEUED,
        paid_at__lt=now - timedelta(seconds=settings.DISPENSE_SWEEP_GRACE_S),
    )
    stuck = Order.objects.filter(
        make_state=MakeState.SENDING,
        make_requested_at__lt=now - timedelta(seconds=stuck_after_s()),
    )
    return [str(pk) for query in (queued, stuck) for pk in query.values_list("id", flat=True)]


def _sweep_one(order_id: str) -> MakeStep | None:
    """Decide one order under its row lock; expiry and unknown are applied here, a send is only returned."""
    now = timezone.now()
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None:
            return None
        step = decide_on_sweep(
            order.status,
            order.make_state,
            paid_for_s=(now - (order.paid_at or order.updated_at)).total_seconds(),
            sending_for_s=(now - order.make_requested_at).total_seconds() if order.make_requested_at else 0.0,
            dispense_window_s=settings.FAST_TRACK_LIMIT_S,
            send_budget_s=stuck_after_s(),
        )
        if step is not None and step.make_state != MakeState.SENDING:
            _apply_step(order, step)
        return step


async def dispense_sweep() -> SweepReport:
    """Finish what dead processes left: send owed makes, hand too-late ones to staff, flag unknown outcomes.
    Safe to run concurrently on many pods (every step is a row-locked or compare-and-set update)."""
    report = SweepReport([], [], [])
    for order_id in await run_db_step(_sweep_candidates):
        step = await run_db_step(_sweep_one, order_id)
        if step is None:
            continue
        if step.make_state == MakeState.SENDING:
            await order_dispense(order_id=order_id)
            report.sent.append(order_id)
        elif step.make_state == MakeState.EXPIRED:
            logger.error("dispense.expired order=%s: the owed make was not sent in time → manual_make", order_id)
            report.expired.append(order_id)
        elif step.make_state == MakeState.UNKNOWN:
            record_dispense("unknown")
            logger.error(
                "dispense.outcome_unknown order=%s: the make was sent by a process that died mid-call; "
                "not resent — staff must check the machine, then mark made or refund",
                order_id,
            )
            report.unknown.append(order_id)
    return report
