"""Payment services: start a payment (double-tap safe), apply a provider status exactly once, refresh.

Exactly-once rules (docs/domain.md §5): every provider status — from a webhook, the status page's on-demand refresh
or ``reconcile_payments`` — goes through ``payment_apply``: a compare-and-set under ``select_for_update`` (order
row first, then attempt row, everywhere) so it holds with several worker processes on PostgreSQL, deciding with
the one pure function ``state.decide_payment``. Only the transaction that moves the order to ``make_pending``
gets ``dispense=True``, and it commits the owed make (``make_state=queued``) with the move; ``payment_settle``
then sends it as durable work (``coffee_payment.orders.dispense``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from coffee_payment.devices.models import ProviderAccount
from coffee_payment.devices.selectors import merchant_account
from coffee_payment.errors import ServiceError
from coffee_payment.monitoring.metrics import record_payment
from coffee_payment.orders.dispense import dispense_and_wait
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import (
    LIVE_ATTEMPT,
    PAYABLE,
    AttemptStatus,
    OrderStatus,
    PaymentFacts,
    PaymentOutcome,
    attempt_next_status,
    decide_payment,
    make_state_after_payment,
)
from coffee_payment.payments.limits import TooManyOpenPayments, device_open_payments_check
from coffee_payment.payments.models import PaymentAttempt
from coffee_payment.payments.providers import get_provider, provider_client
from coffee_payment.payments.providers.base import (
    PaymentRequest,
    ProviderClient,
    ProviderError,
    ProviderMisconfigured,
    ProviderPayment,
    ProviderUnavailable,
)

logger = logging.getLogger(__name__)


# A payment request we cannot serve now: the shared error of orders and payments (coffee_payment/errors.py).
PaymentError = ServiceError


def _claim_ttl() -> timedelta:
    """How long one request may hold the right to create an attempt's payment before another takes over."""
    return timedelta(seconds=settings.PROVIDER_CONNECT_TIMEOUT_S + settings.PROVIDER_READ_TIMEOUT_S + 5)


@dataclass(frozen=True)
class _AttemptContext:
    attempt_id: str
    order_id: str
    provider: str
    account_id: str
    secret: str
    provider_payment_id: str | None
    request: PaymentRequest


@dataclass(frozen=True)
class _Claim:
    attempt_id: str
    action: str  # "redirect" | "wait" | "create"
    confirmation_url: str = ""
    retry: bool = False
    # For "create": what the provider call needs, read in the claim's own thread hop (None: read it again, which
    # raises ProviderMisconfigured when the merchant has no account for the provider).
    context: _AttemptContext | None = None


def _claim_attempt(order_id: str, email: str | None = None) -> _Claim:
    """Under the order's row lock: return the live attempt's URL, or claim the right to create one
    (docs/domain.md §5 rule 2)."""
    now = timezone.now()
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).select_related("device").filter(pk=order_id).first()
        if order is None:
            raise PaymentError("Order not found.", http_status=404)
        if order.status not in PAYABLE and order.status != OrderStatus.PENDING:
            raise PaymentError(
                f"This order cannot be paid: it is {order.get_status_display().lower()}.", http_status=409
            )
        live = order.attempts.filter(status__in=LIVE_ATTEMPT).order_by("-created_at").first()
        if live is not None and live.status == AttemptStatus.PENDING and live.confirmation_url:
            return _Claim(str(live.id), "redirect", live.confirmation_url)
        if order.expires_at <= now:
            raise PaymentError("This order has expired. Please scan the QR code again.", http_status=409)
        if live is not None and live.status == AttemptStatus.CREATING:
            if live.create_claimed_at and now - live.create_claimed_at < _claim_ttl():
                return _Claim(str(live.id), "wait")
            live.create_claimed_at = now  # the previous creator gave up or died: retry with the same key
            live.save(update_fields=["create_claimed_at", "updated_at"])
            return _Claim(str(live.id), "create", retry=True, context=_context_or_none(live, order))
        try:
            device_open_payments_check(device_id=order.device_id, now=now)
        except TooManyOpenPayments as exc:
            logger.warning("order %s: Pay refused: %s", order_id, exc)
            raise PaymentError(
                "Too many payments are open on this machine. Finish or cancel the open one, or try again in a few "
                "minutes.",
                http_status=429,
            ) from exc
        attempt = PaymentAttempt.objects.create(
            order=order,
            provider=order.device.payment_scenario,
            amount_kopecks=order.price_kopecks,
            customer_email=email or "",
            create_claimed_at=now,
        )
        return _Claim(str(attempt.id), "create", context=_context_or_none(attempt, order))


def _context(attempt: PaymentAttempt, order: Order, account: ProviderAccount) -> _AttemptContext:
    size = order.get_size_display()
    return _AttemptContext(
        attempt_id=str(attempt.id),
        order_id=str(order.id),
        provider=attempt.provider,
        account_id=account.account_id,
        secret=account.secret,
        provider_payment_id=attempt.provider_payment_id,
        request=PaymentRequest(
            reference=str(attempt.id),
            order_id=str(order.id),
            idempotency_key=str(attempt.idempotency_key),
            amount_kopecks=attempt.amount_kopecks,
            description=f"{order.drink_name} ({size}), order {order.id}",
            return_url=f"{settings.BASE_URL}/v1/order-status-page?order_id={order.id}",
            notification_url=f"{settings.BASE_URL}{get_provider(attempt.provider).webhook_path}",
            email=attempt.customer_email or None,
        ),
    )


def _context_or_none(attempt: PaymentAttempt, order: Order) -> _AttemptContext | None:
    """The provider call's context from rows in hand (``order.device`` loaded); None when the merchant has no
    account for the attempt's provider (``_attempt_context`` then says so)."""
    account = merchant_account(order.device.merchant_id, attempt.provider)
    return None if account is None else _context(attempt, order, account)


def _attempt_context(attempt_id: str) -> _AttemptContext:
    """What a provider call about the attempt needs. Raises ProviderMisconfigured when the merchant has no account
    for the attempt's provider, PaymentAttempt.DoesNotExist."""
    attempt = PaymentAttempt.objects.select_related("order__device").get(pk=attempt_id)
    account = merchant_account(attempt.order.device.merchant_id, attempt.provider)
    if account is None:
        raise ProviderMisconfigured(f"merchant {attempt.order.device.merchant_id} has no {attempt.provider} account")
    return _context(attempt, attempt.order, account)


def _customer_url(url: object) -> str:
    """The provider's payment page if it is an absolute http(s) URL that fits its column, else "". The status page
    puts it in a link and its script assigns it to ``window.location``: a ``javascript:`` or ``data:`` URL in a
    provider's (or a man in the middle's) answer would run as our page."""
    if not isinstance(url, str) or len(url) > 1000 or not url.isprintable() or " " in url:
        return ""
    parts = urlsplit(url)
    return url if parts.scheme.lower() in ("https", "http") and parts.netloc else ""


def _record_created(attempt_id: str, payment: ProviderPayment, *, order_id: str | None = None) -> str:
    """Store the provider's answer to create; order created/not_paid → pending. A notification may have been
    applied already (auto-pay is fast), so nothing here moves a status backwards. ``order_id``: the attempt's
    order when the caller knows it (else it is read). Returns the payment page URL stored ("" if none is safe to
    hand on: ``_customer_url``)."""
    with transaction.atomic():
        if order_id is None:
            order_id = PaymentAttempt.objects.values_list("order_id", flat=True).get(pk=attempt_id)
        order = Order.objects.select_for_update().get(pk=order_id)
        attempt = PaymentAttempt.objects.select_for_update().get(pk=attempt_id)
        attempt.provider_payment_id = payment.provider_payment_id
        attempt.confirmation_url = _customer_url(payment.confirmation_url)
        attempt.raw_response = payment.raw
        attempt.status = attempt_next_status(attempt.status, PaymentOutcome.PENDING)
        attempt.create_claimed_at = None
        attempt.error = ""
        attempt.save(
            update_fields=[
                "provider_payment_id",
                "confirmation_url",
                "raw_response",
                "status",
                "create_claimed_at",
                "error",
                "updated_at",
            ]
        )
        if order.status in PAYABLE and attempt.status == AttemptStatus.PENDING:
            order.status = OrderStatus.PENDING
            order.save(update_fields=["status", "updated_at"])
        return attempt.confirmation_url


def _release_claim(attempt_id: str, *, error: str, final: bool) -> None:
    fields = {"create_claimed_at": None, "error": error[:500]}
    if final:
        fields["status"] = AttemptStatus.ERROR
    PaymentAttempt.objects.filter(pk=attempt_id, status=AttemptStatus.CREATING).update(**fields)


async def _wait_for_url(attempt_id: str) -> str:
    deadline = asyncio.get_running_loop().time() + _claim_ttl().total_seconds()
    while asyncio.get_running_loop().time() < deadline:
        attempt = await PaymentAttempt.objects.filter(pk=attempt_id).values("status", "confirmation_url").afirst()
        if attempt and attempt["confirmation_url"]:
            return attempt["confirmation_url"]
        if attempt is None or attempt["status"] not in LIVE_ATTEMPT:
            break
        await asyncio.sleep(0.2)
    raise PaymentError("The payment is still being created. Please try again.", http_status=503)


async def payment_initiate(*, order_id: str, email: str | None = None, _fresh: bool = False) -> str:
    """Start (or return the live) provider payment for an order; returns the provider's confirmation URL.

    A double tap makes one provider payment: the second request gets the first one's URL. After a timeout the
    same attempt is retried once the provider says it may be (``ProviderClient.after_ambiguous_create``).
    Raises PaymentError: 404 unknown order, 409 not payable/expired, 429 too many open payments on the device
    (``DEVICE_OPEN_PAYMENTS_MAX``), 503 provider unavailable, 502 refused."""
    claim = await sync_to_async(_claim_attempt)(order_id, email)
    if claim.action == "redirect":
        return claim.confirmation_url
    if claim.action == "wait":
        return await _wait_for_url(claim.attempt_id)
    try:
        payment = await _create_at_provider(claim)
    except _StartAfresh:
        if _fresh:  # the fresh attempt's own Init was ambiguous again: let the customer retry later
            raise PaymentError("The payment service is not answering. Please try again.", http_status=503) from None
        return await payment_initiate(order_id=order_id, email=email, _fresh=True)
    except ProviderUnavailable as exc:
        logger.warning("create payment for attempt %s: %s (will retry with the same key)", claim.attempt_id, exc.detail)
        await sync_to_async(_release_claim)(claim.attempt_id, error=exc.detail, final=False)
        raise PaymentError("The payment service is not answering. Please try again.", http_status=503) from exc
    except ProviderError as exc:
        logger.error("create payment for attempt %s refused: %s", claim.attempt_id, exc.detail)
        await sync_to_async(_release_claim)(claim.attempt_id, error=exc.detail, final=True)
        raise PaymentError("The payment could not be started.", http_status=502) from exc
    except BaseException:
        # Anything unexpected: free the claim so the next tap retries now rather than after the claim TTL.
        await sync_to_async(_release_claim)(claim.attempt_id, error="unexpected error", final=False)
        raise
    url = await sync_to_async(_record_created)(claim.attempt_id, payment, order_id=order_id)
    if not url:
        raise PaymentError("The payment service returned no payment page.", http_status=502)
    return url


async def _create_at_provider(claim: _Claim) -> ProviderPayment:
    ctx = claim.context or await sync_to_async(_attempt_context)(claim.attempt_id)
    client = provider_client(ctx.provider, account_id=ctx.account_id, secret=ctx.secret)
    if claim.retry:
        await _after_ambiguous_create(client, ctx)
    return await client.create_payment(ctx.request)


async def _after_ambiguous_create(client: ProviderClient, ctx: _AttemptContext) -> None:
    """Before re-sending a create whose outcome was unknown, ask the provider (``after_ambiguous_create``). Returns
    when the same create may be sent again (YooKassa: same idempotency key; TBank: CheckOrder found nothing). A paid
    payment is applied (409: already paid). Orphans canceled at the provider close this attempt; ``_StartAfresh``
    tells the caller to start a fresh attempt at once. Raises PaymentError, ProviderUnavailable (the attempt stays
    open and the next tap tries again)."""
    after = await client.after_ambiguous_create(ctx.attempt_id)
    if after.action == "paid" and after.payment is not None:
        await payment_settle(attempt_id=ctx.attempt_id, payment=after.payment)
        raise PaymentError("This order is already paid.", http_status=409)
    if after.action == "fresh":
        await sync_to_async(_release_claim)(ctx.attempt_id, error=after.detail, final=True)
        raise _StartAfresh


class _StartAfresh(Exception):
    """The attempt was closed after an ambiguous create: create a fresh attempt in the same request."""


@dataclass(frozen=True)
class ApplyResult:
    """Outcome of ``payment_apply``: the order's status afterwards, whether it ``changed``, and whether this caller
    must send the make command (``dispense``)."""

    order_id: str
    order_status: str
    changed: bool
    dispense: bool
    reason: str


def _flag_duplicate(order: Order, attempt: PaymentAttempt, payment: ProviderPayment) -> None:
    """This payment took money but the order stands on another one (paid twice, or paid after a refund): nothing
    else flags it, so say it loudly for staff to refund it (docs/operations.md, "Paid twice")."""
    logger.error(
        "payment.duplicate order=%s attempt=%s payment=%s: money taken while the order is %s on another "
        "payment — refund this one",
        order.id,
        attempt.id,
        payment.provider_payment_id,
        order.status,
    )


def payment_apply(*, attempt_id: str, payment: ProviderPayment) -> ApplyResult:
    """Apply a verified provider status to an attempt and its order, exactly once (rules 3–6).

    Compare-and-set under ``select_for_update``: a repeated or stale status is a no-op; amount/currency must equal
    the order's or the order is ``failed``; a late success is ``manual_make``; a refund beats a late success.
    The decision is ``state.decide_payment``; a dispense commits ``make_state=queued`` with ``make_pending``."""
    now = timezone.now()
    order_id = PaymentAttempt.objects.values_list("order_id", flat=True).get(pk=attempt_id)
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        attempt = PaymentAttempt.objects.select_for_update().get(pk=attempt_id)
        # The order's attempts, newest first (one query; no attempt can be added while the order row is locked).
        attempts = list(order.attempts.order_by("-created_at").values_list("id", "status"))
        facts = PaymentFacts(
            order_status=order.status,
            attempt_id=str(attempt.id),
            attempt_status=attempt.status,
            attempt_payment_id=attempt.provider_payment_id,
            payment_id=payment.provider_payment_id,
            payment_reference=payment.reference or None,
            outcome=payment.outcome,
            is_latest_attempt=attempts[0][0] == attempt.id,
            other_attempt_succeeded=any(
                status == AttemptStatus.SUCCEEDED and pk != attempt.pk for pk, status in attempts
            ),
            amount_matches=payment.amount_kopecks == attempt.amount_kopecks == order.price_kopecks
            and payment.currency == "RUB",
            late=now >= order.expires_at or (now - attempt.created_at).total_seconds() > settings.FAST_TRACK_LIMIT_S,
        )
        decided = decide_payment(facts)
        decision = decided.order
        if decided.attempt_status == AttemptStatus.SUCCEEDED != attempt.status and decision.status == order.status:
            _flag_duplicate(order, attempt, payment)
        if decided.attempt_status != attempt.status:
            attempt.status = decided.attempt_status
            attempt.provider_payment_id = payment.provider_payment_id
            attempt.raw_response = payment.raw
            attempt.create_claimed_at = None
            attempt.save(
                update_fields=["status", "provider_payment_id", "raw_response", "create_claimed_at", "updated_at"]
            )
            record_payment(attempt.provider, attempt.status)
        if decision.status == order.status:
            return ApplyResult(str(order.id), order.status, False, False, decision.reason)
        if payment.outcome is PaymentOutcome.SUCCEEDED:
            order.paid_at = now
        order.make_state = make_state_after_payment(decision.status, order.make_state, dispense=decision.dispense)
        order.status = decision.status
        order.save(update_fields=["status", "paid_at", "make_state", "updated_at"])
        if not facts.amount_matches and payment.outcome is PaymentOutcome.SUCCEEDED:
            logger.error(
                "order %s: provider amount %s %s != order %s RUB — marked failed, not dispensed",
                order.id,
                payment.amount_kopecks,
                payment.currency,
                order.price_kopecks,
            )
        return ApplyResult(str(order.id), order.status, True, decision.dispense, decision.reason)


def _apply_and_release(*, attempt_id: str, payment: ProviderPayment) -> ApplyResult:
    """``payment_apply``, then this thread's database connection back to the pool (CONN_MAX_AGE=0): the caller
    goes on to await the make, whose steps take a connection of their own. Holding this one across that wait let
    a burst of notifications hold every pooled connection while their makes waited for one (``PoolTimeout``
    after ``DB_POOL_TIMEOUT_S``; seen in the load suite at the page's poll rate, docs/performance.md)."""
    try:
        return payment_apply(attempt_id=attempt_id, payment=payment)
    finally:
        close_old_connections()


async def payment_settle(*, attempt_id: str, payment: ProviderPayment) -> ApplyResult:
    """``payment_apply`` then, only if this caller won the move to ``make_pending``, the make command: started as
    durable work that survives this caller's cancellation (client gone, notifier timeout) and awaited here."""
    result = await sync_to_async(_apply_and_release)(attempt_id=attempt_id, payment=payment)
    if result.dispense:
        status = await dispense_and_wait(result.order_id)
        result = ApplyResult(result.order_id, status or result.order_status, True, True, result.reason)
    return result


async def payment_refresh(*, attempt_id: str) -> ApplyResult:
    """Ask the provider for the attempt's current status and settle it. Raises ProviderError."""
    ctx = await sync_to_async(_attempt_context)(attempt_id)
    if not ctx.provider_payment_id:
        raise ProviderUnavailable("attempt has no provider payment id yet")
    client = provider_client(ctx.provider, account_id=ctx.account_id, secret=ctx.secret)
    payment = await client.get_payment(ctx.provider_payment_id)
    return await payment_settle(attempt_id=attempt_id, payment=payment)


def _claim_refresh(order_id: str) -> str | None:
    """Rate limit for on-demand refresh: at most one provider poll per attempt per PAYMENT_REFRESH_INTERVAL_S,
    across all workers (compare-and-set on ``last_polled_at``). Returns the attempt id to poll, or None."""
    interval = timedelta(seconds=settings.PAYMENT_REFRESH_INTERVAL_S)
    now = timezone.now()
    attempt_id = (
        PaymentAttempt.objects.filter(order_id=order_id, status=AttemptStatus.PENDING, created_at__lt=now - interval)
        .exclude(provider_payment_id=None)
        .order_by("-created_at")
        .values_list("id", flat=True)
        .first()
    )
    if attempt_id is None:
        return None
    won = (
        PaymentAttempt.objects.filter(pk=attempt_id)
        .filter(Q(last_polled_at=None) | Q(last_polled_at__lt=now - interval))
        .update(last_polled_at=now)
    )
    return str(attempt_id) if won else None


async def payment_refresh_if_stale(*, order_id: str) -> bool:
    """Called by the status JSON for a ``pending`` order: polls the provider when the notification is overdue.
    Returns whether it polled (only then may the order have changed). Provider errors are logged, never raised
    (the page keeps polling)."""
    attempt_id = await sync_to_async(_claim_refresh)(order_id)
    if attempt_id is None:
        return False
    try:
        await payment_refresh(attempt_id=attempt_id)
    except ProviderError as exc:
        logger.warning("on-demand refresh of attempt %s failed: %s", attempt_id, exc.detail)
    return True


def attempts_to_reconcile(*, min_age_s: int, max_age_h: int = 48) -> list[str]:
    """Ids of attempts stuck in ``pending`` (or ``creating`` with a provider id) older than ``min_age_s`` seconds
    and younger than ``max_age_h`` hours (providers stop caring after 24 h)."""
    now = timezone.now()
    return [
        str(pk)
        for pk in PaymentAttempt.objects.filter(
            status__in=LIVE_ATTEMPT,
            created_at__lt=now - timedelta(seconds=min_age_s),
            created_at__gt=now - timedelta(hours=max_age_h),
        )
        .exclude(provider_payment_id=None)
        .values_list("id", flat=True)
    ]
