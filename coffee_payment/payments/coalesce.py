"""Provider re-fetches for notifications, coalesced per payment across workers and pods (issue 11: no
amplification — 100 anonymous notifications naming one payment must not make 100 authenticated provider calls).

The provider's last answer about an attempt's payment is kept on the attempt (``last_verified_answer``, with
``last_verified_at`` = when the fetch that got it *started*). A notification reuses that answer when

- a fetch started after the notification arrived (it is at least as new as the claim), or
- the answer is younger than ``PROVIDER_VERIFY_REUSE_S`` and either says what the notification claims or is final
  (refunded: nothing moves it any more).

Otherwise one worker claims the fetch (compare-and-set on ``verify_claimed_at``) and the others poll for its
answer; if that fetch fails, the notifications that waited for it fail too (503: the provider retries later)
instead of each fetching in turn.

So a notification that claims something new — a TBank REFUNDED while the kept answer is CONFIRMED — is never
answered from the cache, and a cached success can never hide a refund for longer than the reuse window (and even
then the state machine makes a stale answer a no-op: it never moves an order backwards). Whatever is reused
still goes through ``payment_settle`` → ``payment_apply`` → ``state.decide_payment``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from coffee_payment.orders.state import PaymentOutcome
from coffee_payment.payments.models import PaymentAttempt
from coffee_payment.payments.providers.base import ProviderPayment, ProviderUnavailable

# Answers no later provider event changes, reusable for any claim within the window. Not CANCELED: TBank maps
# AUTH_FAIL and REJECTED there, and a customer may retry the card on the same payment (then CONFIRMED follows).
FINAL_OUTCOMES = frozenset({PaymentOutcome.REFUNDED})
_POLL_S = 0.1


def answer_to_json(payment: ProviderPayment) -> dict[str, Any]:
    """A provider answer as stored on the attempt (raw provider JSON included)."""
    return {**dataclasses.asdict(payment), "outcome": payment.outcome.value}


def answer_from_json(data: Any) -> ProviderPayment | None:
    """The stored answer, or None when there is none or it does not parse (then it is fetched again)."""
    if not isinstance(data, dict):
        return None
    try:
        return ProviderPayment(**{**data, "outcome": PaymentOutcome(data["outcome"])})
    except (KeyError, TypeError, ValueError):
        return None


def _claim_ttl() -> timedelta:
    """How long one worker may hold the fetch before another takes over (its provider budget plus a margin)."""
    return timedelta(seconds=settings.PROVIDER_CONNECT_TIMEOUT_S + settings.PROVIDER_READ_TIMEOUT_S + 2)


def _reusable(
    row: dict[str, Any], *, payment_id: str, claimed: PaymentOutcome | None, arrived: datetime
) -> ProviderPayment | None:
    answer, verified_at = answer_from_json(row["last_verified_answer"]), row["last_verified_at"]
    if answer is None or verified_at is None or answer.provider_payment_id != payment_id:
        return None
    if verified_at >= arrived:
        return answer
    fresh = timezone.now() - verified_at < timedelta(seconds=settings.PROVIDER_VERIFY_REUSE_S)
    return answer if fresh and (claimed in (None, answer.outcome) or answer.outcome in FINAL_OUTCOMES) else None


def _reuse_or_claim(
    attempt_id: str, *, payment_id: str, claimed: PaymentOutcome | None, arrived: datetime
) -> ProviderPayment | bool:
    """The reusable answer; else True when this caller won the right to fetch, False when another worker holds
    it."""
    row = (
        PaymentAttempt.objects.filter(pk=attempt_id)
        .values("last_verified_answer", "last_verified_at", "verify_claimed_at", "verify_failed_at")
        .first()
    )
    if row is None:
        return True  # nothing to coalesce on; the caller fetches
    answer = _reusable(row, payment_id=payment_id, claimed=claimed, arrived=arrived)
    if answer is not None:
        return answer
    if row["verify_failed_at"] is not None and row["verify_failed_at"] >= arrived:
        raise ProviderUnavailable("the provider fetch this notification waited for failed; retry later")
    now = timezone.now()
    if row["verify_claimed_at"] is not None and row["verify_claimed_at"] >= now - _claim_ttl():
        return False  # another worker is fetching: no write while waiting for it
    return bool(
        PaymentAttempt.objects.filter(pk=attempt_id)
        .filter(Q(verify_claimed_at=None) | Q(verify_claimed_at__lt=now - _claim_ttl()))
        .update(verify_claimed_at=now)
    )


def _answer_store(attempt_id: str, payment: ProviderPayment, *, started: datetime) -> None:
    """Keep ``payment`` as the attempt's last verified answer (unless a fetch that started later is kept already)
    and free the fetch claim."""
    PaymentAttempt.objects.filter(pk=attempt_id).filter(
        Q(last_verified_at=None) | Q(last_verified_at__lte=started)
    ).update(last_verified_at=started, last_verified_answer=answer_to_json(payment))
    PaymentAttempt.objects.filter(pk=attempt_id).update(verify_claimed_at=None)


def _release(attempt_id: str, *, started: datetime) -> None:
    """Free the fetch claim after a failed fetch, marking when it started: the notifications that arrived before
    it fail too (503, the provider retries) rather than each fetching in turn."""
    PaymentAttempt.objects.filter(pk=attempt_id).update(verify_claimed_at=None, verify_failed_at=started)


async def provider_payment_verified(
    *,
    attempt_id: str,
    payment_id: str,
    claimed: PaymentOutcome | None,
    fetch: Callable[[], Awaitable[ProviderPayment]],
) -> ProviderPayment:
    """The provider's answer about ``payment_id`` for a notification that claims ``claimed`` (None: no specific
    outcome): reused when the rules above allow, else fetched by this worker or by the one that claimed the fetch.
    Raises what ``fetch`` raises, and ProviderUnavailable when the fetch this caller waited for failed or outlived
    its claim."""
    arrived = timezone.now()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _claim_ttl().total_seconds()
    while True:
        found = await sync_to_async(_reuse_or_claim)(
            attempt_id, payment_id=payment_id, claimed=claimed, arrived=arrived
        )
        if isinstance(found, ProviderPayment):
            return found
        if found:
            started = timezone.now()
            try:
                payment = await fetch()
            except BaseException:
                await sync_to_async(_release)(attempt_id, started=started)
                raise
            await sync_to_async(_answer_store)(attempt_id, payment, started=started)
            return payment
        if loop.time() >= deadline:
            raise ProviderUnavailable("another worker is still fetching this payment from the provider")
        await asyncio.sleep(_POLL_S)
