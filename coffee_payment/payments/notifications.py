"""Processing of provider notifications (dj-stripe shape): cheap rejects first, the raw notification stored
before processing, verify, apply through ``payment_settle``, keep the verdict on the stored row.

A notification is a claim, never proof (domain.md §3, §4): before it moves money or dispenses, the payment is
re-read from the provider with the merchant's credentials — YooKassa ``GET payments/{id}`` (and ``GET
refunds/{id}`` for a refund), TBank ``GetState`` after the Token check — and the provider's answer goes through
the same decision as a poll or the reconciler (``payment_settle`` → ``state.decide_payment``). The attempt is
found by the provider payment id stored at creation; our reference (metadata, OrderId) is a cross-check.

HTTP answers: processed, duplicate, stale or unknown → 200 (TBank: body ``OK``); malformed or forged → 400; our
failure → 503 so the provider retries (the stored row keeps the error and can be re-processed from the admin).
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from coffee_payment.devices.models import ProviderAccount
from coffee_payment.devices.selectors import account_by_id, merchant_account
from coffee_payment.monitoring.metrics import record_notification
from coffee_payment.orders.state import PaymentOutcome
from coffee_payment.payments.coalesce import provider_payment_verified
from coffee_payment.payments.inbox import REJECTED_BODY_CHARS, Admitted, attempt_lookup, missing_account, stored_text
from coffee_payment.payments.models import Notification, NotificationVerdict, PaymentAttempt
from coffee_payment.payments.providers import get_provider
from coffee_payment.payments.providers.base import (
    InvalidNotification,
    NotificationClaim,
    PaymentProvider,
    ProviderClient,
    ProviderError,
    ProviderMisconfigured,
    ProviderPayment,
    ProviderRejected,
)
from coffee_payment.payments.services import payment_settle

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """How a notification was handled: the stored ``verdict``, the HTTP status to answer and a ``detail``."""

    verdict: str
    http_status: int
    detail: str


# Verdicts whose stored body is cut down to its start (with its size and SHA-256 kept): junk and foreign payments.
_TRUNCATED_VERDICTS = (NotificationVerdict.REJECTED, NotificationVerdict.UNKNOWN_PAYMENT)


def notification_record(
    notification_id: int, verdict: Verdict, attempt_id: str | None = None, *, error: str = "", body: bytes = b""
) -> None:
    """Keep the verdict (the attempt it concerned, the traceback of a failure) on the stored row; a rejected
    notification or one for no payment of ours keeps only the start of its ``body`` (the inbox stays bounded)."""
    fields: dict[str, Any] = {
        "verdict": verdict.verdict,
        "detail": verdict.detail[:500],
        "error": error,
        "processed_at": timezone.now(),
    }
    if attempt_id is not None:
        fields["attempt_id"] = attempt_id
    if verdict.verdict in _TRUNCATED_VERDICTS and body:
        text = stored_text(body)
        fields["body"] = text[:REJECTED_BODY_CHARS]
        fields["body_truncated"] = len(text) > REJECTED_BODY_CHARS
    Notification.objects.filter(pk=notification_id).update(**fields)


@dataclass(frozen=True)
class _AttemptAccount:
    attempt_id: str
    provider_payment_id: str | None
    account_id: str
    secret: str


def _holds_claim(attempt: PaymentAttempt | None, claim: NotificationClaim) -> bool:
    """The attempt was found by the claim's payment id (one found by our reference may have stored one since)."""
    return (
        attempt is not None
        and bool(attempt.provider_payment_id)
        and (attempt.provider_payment_id == claim.provider_payment_id)
    )


def _of_merchant(account: ProviderAccount | None, merchant_id: int, provider: str) -> bool:
    """The account is the merchant's for ``provider`` (one per merchant and provider)."""
    return account is not None and account.merchant_id == merchant_id and account.provider == provider


def _in_hand(
    provider: str, claim: NotificationClaim, *, attempt: PaymentAttempt | None, account: ProviderAccount | None
) -> _AttemptAccount | None:
    """The attempt and account as the inbox found them (no query, no thread hop), when they are the ones
    ``_attempt_account`` would return: the attempt holds the claim's payment id and the account is its merchant's
    for ``provider``. None otherwise."""
    if not _holds_claim(attempt, claim) or not _of_merchant(account, attempt.order.device.merchant_id, provider):
        return None
    return _AttemptAccount(str(attempt.id), attempt.provider_payment_id, account.account_id, account.secret)


def _attempt_account(
    provider: str, claim: NotificationClaim, *, attempt: PaymentAttempt | None, account: ProviderAccount | None
) -> _AttemptAccount | None:
    """The attempt the claim's payment belongs to (``inbox.attempt_lookup``) with its merchant's account for
    ``provider``; None when there is no such attempt, or the claim names an account (TBank's TerminalKey) and the
    attempt's merchant has none. Raises ProviderMisconfigured when a claim naming no account (YooKassa) is about an
    attempt whose merchant has no account at ``provider`` (ours to fix: retried, not dropped as unknown).

    What was already read for this notification is reused, so it reads the account once: ``attempt`` as the inbox
    found it, when found by the claim's payment id (an attempt found by our reference is looked up again: its
    create may have stored a payment id since); ``account`` as the claim's signature check read it, when it is the
    attempt merchant's (one account per merchant and provider)."""
    if not _holds_claim(attempt, claim):
        attempt = attempt_lookup(provider, attempt_id=claim.attempt_id, provider_payment_id=claim.provider_payment_id)
    if attempt is None:
        return None
    merchant_id = attempt.order.device.merchant_id
    if not _of_merchant(account, merchant_id, provider):
        account = merchant_account(merchant_id, provider)
    if account is None:
        if claim.account_id is not None:  # the claim's account is not this attempt merchant's: not ours to settle
            return None
        raise ProviderMisconfigured(missing_account(attempt, provider))
    return _AttemptAccount(str(attempt.id), attempt.provider_payment_id, account.account_id, account.secret)


async def _settled(found: _AttemptAccount, payment: ProviderPayment, said: str) -> tuple[Verdict, str | None]:
    result = await payment_settle(attempt_id=found.attempt_id, payment=payment)
    verdict = NotificationVerdict.APPLIED if result.changed else NotificationVerdict.NO_CHANGE
    return Verdict(verdict, 200, f"{said}: {result.reason} → {result.order_status}"), found.attempt_id


async def _verified_claim(provider: PaymentProvider, body: bytes) -> Admitted | Verdict:
    """The claim after the provider's shape and (for a claim naming its account) signature checks, with the
    account it was checked with (no attempt yet), or the 400 verdict refusing it."""
    try:
        claim = provider.parse_notification(body)
        if claim.account_id is None:
            return Admitted(claim, None, None)
        account = await sync_to_async(account_by_id)(provider.name, claim.account_id)
        if account is None:
            return Verdict(NotificationVerdict.REJECTED, 400, f"unknown {provider.account_field}")
        return Admitted(provider.verify_notification(claim, secret=account.secret), None, account)
    except InvalidNotification as exc:
        return Verdict(NotificationVerdict.REJECTED, 400, exc.detail)


async def _confirmed(
    client: ProviderClient, claim: NotificationClaim, attempt_id: str
) -> tuple[ProviderPayment, str | None]:
    """The provider's answer about the claim's payment as one fetch coalesced across workers (payments/coalesce.py):
    a burst of claims makes one call. The second value is the provider's refusal of a detail of the claim (to this
    caller only)."""
    refused: list[str] = []

    async def fetch() -> ProviderPayment:
        payment, refusal = await client.confirm_notification(claim)
        if refusal is not None:
            refused.append(refusal)
        return payment

    payment = await provider_payment_verified(
        attempt_id=attempt_id, payment_id=claim.provider_payment_id, claimed=claim.claimed, fetch=fetch
    )
    return payment, (refused[0] if refused else None)


async def provider_process(
    provider: PaymentProvider, body: bytes, *, admitted: Admitted | None = None
) -> tuple[Verdict, str | None]:
    """Verify a notification of ``provider``, find the attempt (by the provider payment id, else our reference),
    and — when it would move money or dispense — confirm it with the provider using the merchant's credentials
    (a payment the notification's own signature proves pending is settled without a call: no amplification) and
    settle the provider's answer. ``admitted``: what the inbox's checks of this body found (``inbox.Admitted``),
    so they are not repeated; None (a replay) checks from scratch. Returns (verdict, attempt id). Raises only
    through the caller's catch-all (503)."""
    checked = admitted or await _verified_claim(provider, body)
    if isinstance(checked, Verdict):
        return checked, None
    claim = checked.claim
    found = _in_hand(provider.name, claim, attempt=checked.attempt, account=checked.account)
    if found is None:
        try:
            found = await sync_to_async(_attempt_account)(
                provider.name, claim, attempt=checked.attempt, account=checked.account
            )
        except ProviderMisconfigured as exc:  # kept whole (not truncated as unknown) for a replay; retried
            return Verdict(NotificationVerdict.ERROR, 503, exc.detail), None
    if found is None or (claim.account_id is not None and found.account_id != claim.account_id):
        return Verdict(NotificationVerdict.UNKNOWN_PAYMENT, 200, f"no attempt for {claim.names}"), None
    if claim.signed is not None and claim.signed.outcome is PaymentOutcome.PENDING:
        return await _settled(found, claim.signed, claim.event)
    client = provider.connect(account_id=found.account_id, secret=found.secret)
    label = provider.fetch_label
    try:
        payment, refusal = await _confirmed(client, claim, found.attempt_id)
    except ProviderRejected as exc:  # e.g. 404: the payment does not exist at this account
        return Verdict(NotificationVerdict.MISMATCH, 200, f"{label} refused: {exc.detail}"), found.attempt_id
    except ProviderError as exc:
        return Verdict(NotificationVerdict.RETRY, 503, f"{label} failed: {exc.detail}"), found.attempt_id
    if refusal is not None:
        return Verdict(NotificationVerdict.MISMATCH, 200, refusal), found.attempt_id
    if payment.provider_payment_id != claim.provider_payment_id:
        return Verdict(NotificationVerdict.MISMATCH, 200, "re-fetched another payment"), found.attempt_id
    said, disagree = provider.describe(claim, payment)
    verdict, attempt_id = await _settled(found, payment, said)
    if disagree:
        said = f"notification said {claim.status}, provider says {payment.provider_status}; applied the provider's"
        return Verdict(NotificationVerdict.MISMATCH, 200, f"{said}: {verdict.detail}"), attempt_id
    return verdict, attempt_id


async def notification_process(
    provider: str, notification_id: int, body: bytes, *, admitted: Admitted | None = None
) -> Verdict:
    """Process a stored notification (``admitted``: what the inbox's checks found, see ``provider_process``) and
    record the verdict on its row. Any exception — a database error, a statement timeout, a bug — is recorded as
    verdict ``error`` with its traceback and answered 503, so the provider retries and staff can re-process it
    from the admin (dj-stripe's shape)."""
    try:
        verdict, attempt_id = await provider_process(get_provider(provider), body, admitted=admitted)
        error = ""
    except Exception as exc:  # noqa: BLE001 - recorded on the row and logged; the provider retries
        logger.exception("%s notification %s failed; the provider will retry", provider, notification_id)
        verdict, attempt_id = Verdict(NotificationVerdict.ERROR, 503, f"{type(exc).__name__}: {exc}"), None
        error = traceback.format_exc()
    log = logger.warning if verdict.http_status >= 400 else logger.info
    log("%s notification %s: %s (%s)", provider, notification_id, verdict.verdict, verdict.detail)
    record_notification(provider, verdict.verdict)
    try:
        await sync_to_async(notification_record)(notification_id, verdict, attempt_id, error=error[-20000:], body=body)
    except Exception:  # noqa: BLE001 - the verdict stands; the row keeps "received"
        logger.exception("could not record the verdict of notification %s", notification_id)
    return verdict


async def notification_replay(notification_id: int) -> Verdict:
    """Re-process a stored notification (admin action): the same checks and decision as on arrival. A notification
    already applied is left as it is (its verdict is the evidence of what it changed). Raises
    Notification.DoesNotExist."""
    stored = await Notification.objects.aget(pk=notification_id)
    if stored.verdict == NotificationVerdict.APPLIED:
        # Its change is in force and a state never goes back, so processing it again could only change the row:
        # its verdict would become "no change" and the record of which notification moved the order would be lost.
        return Verdict(stored.verdict, 200, "already applied; not re-processed")
    if stored.body_truncated:  # refused on arrival and kept only in part: there is nothing to re-process
        return Verdict(stored.verdict, 200, "stored truncated when it was refused; not re-processed")
    return await notification_process(stored.provider, stored.pk, stored.body.encode("utf-8"))
