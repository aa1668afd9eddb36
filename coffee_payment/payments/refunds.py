"""Staff refunds (the admin's "refund through the provider" action): refund the order's payment at its
provider, then apply the provider's answer through the one path every status takes (``payment_refresh`` →
``payment_apply``), and record who did what on the order (``Order.refund_result``).

YooKassa: ``POST /v3/refunds`` with an ``Idempotence-Key`` derived from the attempt's own key, so a repeated
refund of the same payment (a double click, a retry after a timeout) is the same refund (docs/domain.md §3).
TBank: ``Cancel`` of the full amount (docs/domain.md §4); a second Cancel of a refunded payment is refused by TBank.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from coffee_payment.devices.encryption import SecretUndecryptable
from coffee_payment.devices.selectors import merchant_account
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import MONEY_TAKEN, AttemptStatus
from coffee_payment.payments.models import PaymentAttempt
from coffee_payment.payments.providers import provider_client
from coffee_payment.payments.providers.base import ProviderError, ProviderUnavailable
from coffee_payment.payments.services import payment_refresh

logger = logging.getLogger(__name__)

_REFUND_KEY_NAMESPACE = uuid.UUID("6f1c3a52-3d0e-4c53-9a55-2b8c1c4f7e01")


class RefundError(Exception):
    """A refund staff asked for that cannot be done; ``message`` says why, in the active language (shown to staff
    in the admin)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RefundResult:
    """``order_status`` after the refund was applied (``refunded``, or unchanged while the provider processes
    it), ``detail``, the line recorded on the order, and the provider's ``answer`` (its refund status)."""

    order_status: str
    detail: str
    answer: str = ""


@dataclass(frozen=True)
class _Target:
    attempt_id: str
    provider: str
    provider_payment_id: str
    amount_kopecks: int
    idempotency_key: str
    account_id: str
    secret: str


def _refund_target(order_id: str) -> _Target:
    order = Order.objects.select_related("device").get(pk=order_id)
    if order.status not in MONEY_TAKEN:
        raise RefundError(
            _("The order is “%(status)s”: no payment was taken, there is nothing to refund.")
            % {"status": order.get_status_display()}
        )
    attempt = (
        PaymentAttempt.objects.filter(order_id=order_id, status=AttemptStatus.SUCCEEDED)
        .exclude(provider_payment_id=None)
        .order_by("-created_at")
        .first()
    )
    if attempt is None:
        raise RefundError(_("The order has no succeeded payment at a provider: nothing was refunded."))
    names = {"provider": attempt.provider}
    try:
        account = merchant_account(order.device.merchant_id, attempt.provider)
    except SecretUndecryptable as exc:  # a key removed too early (docs/operations.md): nothing was sent
        logger.error("refund of order %s: %s", order_id, exc)
        raise RefundError(
            _(
                "The merchant's %(provider)s secret cannot be decrypted (FIELD_ENCRYPTION_KEYS): nothing was sent "
                "to the provider. Put the old key back, or refund in the provider's console."
            )
            % names
        ) from exc
    if account is None:
        raise RefundError(
            _(
                "The merchant has no %(provider)s account: nothing was sent to the provider. Add the account, or "
                "refund in the provider's console."
            )
            % names
        )
    return _Target(
        attempt_id=str(attempt.id),
        provider=attempt.provider,
        provider_payment_id=attempt.provider_payment_id,
        amount_kopecks=attempt.amount_kopecks,
        idempotency_key=str(uuid.uuid5(_REFUND_KEY_NAMESPACE, str(attempt.idempotency_key))),
        account_id=account.account_id,
        secret=account.secret,
    )


def _record(order_id: str, line: str) -> None:
    """Append ``line`` to the order's refund record (kept within the column's 500 characters, newest last)."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        order.refund_result = "\n".join(filter(None, [order.refund_result, line]))[-500:]
        order.save(update_fields=["refund_result", "updated_at"])


async def _ask_provider(target: _Target) -> str:
    client = provider_client(target.provider, account_id=target.account_id, secret=target.secret)
    return await client.refund(  # the full amount
        target.provider_payment_id, amount_kopecks=target.amount_kopecks, idempotency_key=target.idempotency_key
    )


async def payment_refund(*, order: Order, actor: str) -> RefundResult:
    """Refund ``order``'s payment in full at its provider on behalf of staff member ``actor`` (a username), apply
    the provider's answer to the order and record it on the order. Must run on an event loop (the provider
    clients are async). Raises RefundError (nothing to refund, provider refused or unreachable — also recorded)."""
    order_id = str(order.id)
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M UTC")
    target = await sync_to_async(_refund_target)(order_id)
    try:
        provider_status = await _ask_provider(target)
    except ProviderUnavailable as exc:  # a timeout or 5xx: the provider may have made the refund
        logger.error("refund of order %s by %s: outcome unknown: %s", order_id, actor, exc.detail)
        line = f"{stamp} {actor}: refund OUTCOME UNKNOWN at {target.provider}: {exc.detail}"
        await sync_to_async(_record)(order_id, line)
        raise RefundError(
            _(
                "The provider did not answer (%(detail)s): the refund may have been made. Refund again (the same "
                "refund is never made twice) or check the provider's console."
            )
            % {"detail": exc.detail}
        ) from exc
    except ProviderError as exc:
        logger.error("refund of order %s by %s failed: %s", order_id, actor, exc.detail)
        await sync_to_async(_record)(order_id, f"{stamp} {actor}: refund FAILED at {target.provider}: {exc.detail}")
        raise RefundError(_("The provider did not refund: %(detail)s") % {"detail": exc.detail}) from exc
    try:
        applied = await payment_refresh(attempt_id=target.attempt_id)
        status = applied.order_status
    except ProviderError as exc:  # refunded, but the re-fetch failed: the notification or reconcile will apply it
        logger.warning("refund of order %s done, re-fetch failed: %s", order_id, exc.detail)
        status = (await Order.objects.aget(pk=order_id)).status
    detail = f"{stamp} {actor}: {target.provider} refund of {target.provider_payment_id}: {provider_status}"
    await sync_to_async(_record)(order_id, detail)
    logger.info("order %s refund by %s: %s (order now %s)", order_id, actor, detail, status)
    return RefundResult(order_status=status, detail=detail, answer=provider_status)
