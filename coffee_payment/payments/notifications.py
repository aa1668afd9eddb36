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

import dataclasses
import logging
import traceback
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from coffee_payment.devices.models import PaymentScenario, ProviderAccount
from coffee_payment.jsonbody import BadJson, parse_json
from coffee_payment.monitoring.metrics import record_notification
from coffee_payment.orders.state import PaymentOutcome
from coffee_payment.payments.coalesce import provider_payment_verified
from coffee_payment.payments.inbox import REJECTED_BODY_CHARS, attempt_lookup, stored_text
from coffee_payment.payments.models import Notification, NotificationVerdict
from coffee_payment.payments.providers import provider_client
from coffee_payment.payments.providers.base import (
    InvalidNotification,
    ProviderError,
    ProviderPayment,
    ProviderRejected,
)
from coffee_payment.payments.providers.tbank import TBankClient
from coffee_payment.payments.providers.yookassa import (
    STATUS_MAP,
    NotificationClaim,
    YooKassaClient,
    parse_notification,
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


def _attempt_account(
    provider: str, *, attempt_id: str | None, provider_payment_id: str | None
) -> _AttemptAccount | None:
    """The attempt a provider payment belongs to (``inbox.attempt_lookup``) with its merchant's account for
    ``provider``; None when there is no such attempt or account."""
    attempt = attempt_lookup(provider, attempt_id=attempt_id, provider_payment_id=provider_payment_id)
    if attempt is None:
        return None
    account = ProviderAccount.objects.filter(merchant_id=attempt.order.device.merchant_id, provider=provider).first()
    if account is None:
        return None
    return _AttemptAccount(str(attempt.id), attempt.provider_payment_id, account.account_id, account.secret)


async def _settled(found: _AttemptAccount, payment: ProviderPayment, said: str) -> tuple[Verdict, str | None]:
    result = await payment_settle(attempt_id=found.attempt_id, payment=payment)
    verdict = NotificationVerdict.APPLIED if result.changed else NotificationVerdict.NO_CHANGE
    return Verdict(verdict, 200, f"{said}: {result.reason} → {result.order_status}"), found.attempt_id


async def _yookassa_refund_outcome(
    client: YooKassaClient, claim: NotificationClaim, payment: ProviderPayment
) -> ProviderPayment | Verdict:
    """Confirm a ``refund.*`` notification with ``GET refunds/{id}``: a refund of this payment that succeeded for
    the whole amount makes the payment REFUNDED even before its ``refunded_amount`` shows it."""
    try:
        refund = await client.get_refund(claim.refund_id or "")
    except ProviderRejected as exc:
        return Verdict(NotificationVerdict.MISMATCH, 200, f"refund re-fetch refused: {exc.detail}")
    if refund.payment_id != payment.provider_payment_id:
        return Verdict(NotificationVerdict.MISMATCH, 200, "refund belongs to another payment")
    if refund.status == "succeeded" and refund.amount_kopecks >= payment.amount_kopecks:
        return dataclasses.replace(payment, outcome=PaymentOutcome.REFUNDED)
    return payment


def _yookassa_claimed(claim: NotificationClaim) -> PaymentOutcome | None:
    if claim.refund_id is not None:
        return PaymentOutcome.REFUNDED
    return STATUS_MAP.get(claim.status) if claim.status else None


async def _yookassa_payment(
    client: YooKassaClient, claim: NotificationClaim, attempt_id: str
) -> ProviderPayment | Verdict:
    """``GET payments/{id}`` — and, for a ``refund.*`` claim the payment does not show as refunded yet, ``GET
    refunds/{id}`` — as one fetch coalesced across workers (payments/coalesce.py): a burst of refund claims makes
    one pair of calls. Returns the refund check's verdict when it refused the claim (to this caller only)."""
    refused: list[Verdict] = []

    async def fetch() -> ProviderPayment:
        payment = await client.get_payment(claim.provider_payment_id)
        if claim.refund_id is None or payment.outcome is PaymentOutcome.REFUNDED:
            return payment
        checked = await _yookassa_refund_outcome(client, claim, payment)
        if isinstance(checked, Verdict):
            refused.append(checked)
            return payment
        return checked

    payment = await provider_payment_verified(
        attempt_id=attempt_id, payment_id=claim.provider_payment_id, claimed=_yookassa_claimed(claim), fetch=fetch
    )
    return refused[0] if refused else payment


async def yookassa_process(body: bytes) -> tuple[Verdict, str | None]:
    """Verify a YooKassa notification by re-fetching the payment (and the refund, for ``refund.*``) with the
    merchant's credentials — YooKassa notifications carry no signature — and settle the provider's answer.
    Returns (verdict, attempt id). Raises ProviderError subclasses other than rejections only through the caller's
    catch-all (a 503)."""
    try:
        claim = parse_notification(body)
    except InvalidNotification as exc:
        return Verdict(NotificationVerdict.REJECTED, 400, exc.detail), None
    found = await sync_to_async(_attempt_account)(
        PaymentScenario.YOOKASSA, attempt_id=claim.attempt_id, provider_payment_id=claim.provider_payment_id
    )
    if found is None:
        return Verdict(
            NotificationVerdict.UNKNOWN_PAYMENT, 200, f"no attempt for payment {claim.provider_payment_id}"
        ), None
    client = provider_client(PaymentScenario.YOOKASSA, account_id=found.account_id, secret=found.secret)
    assert isinstance(client, YooKassaClient)
    try:
        payment = await _yookassa_payment(client, claim, found.attempt_id)
        if isinstance(payment, Verdict):
            return payment, found.attempt_id
    except ProviderRejected as exc:  # e.g. 404: the payment does not exist in this shop
        return Verdict(NotificationVerdict.MISMATCH, 200, f"re-fetch refused: {exc.detail}"), found.attempt_id
    except ProviderError as exc:
        return Verdict(NotificationVerdict.RETRY, 503, f"re-fetch failed: {exc.detail}"), found.attempt_id
    if payment.provider_payment_id != claim.provider_payment_id:
        return Verdict(NotificationVerdict.MISMATCH, 200, "re-fetched another payment"), found.attempt_id
    verdict, attempt_id = await _settled(found, payment, claim.event)
    if claim.status and claim.refund_id is None and claim.status != payment.provider_status:
        said = f"notification said {claim.status}, provider says {payment.provider_status}; applied the provider's"
        return Verdict(NotificationVerdict.MISMATCH, 200, f"{said}: {verdict.detail}"), attempt_id
    return verdict, attempt_id


def _tbank_account(terminal_key: str) -> tuple[str, str] | None:
    account = ProviderAccount.objects.filter(provider=PaymentScenario.TBANK, account_id=terminal_key).first()
    return (account.account_id, account.secret) if account else None


async def tbank_process(body: bytes) -> tuple[Verdict, str | None]:
    """Verify a TBank notification's TerminalKey and Token, find the attempt (by PaymentId, else ``OrderId`` = our
    attempt id; ``Data`` is not an echo of Init's ``DATA``), and — when it would move money or dispense — confirm
    it with ``GetState`` (coalesced across workers: payments/coalesce.py) and settle the provider's answer (a
    refund that already happened wins over a late or replayed CONFIRMED). Returns (verdict, attempt id)."""
    try:
        data: Any = parse_json(body)
    except BadJson as exc:
        return Verdict(NotificationVerdict.REJECTED, 400, str(exc)), None
    if not isinstance(data, dict) or not isinstance(data.get("TerminalKey"), str):
        return Verdict(NotificationVerdict.REJECTED, 400, "not a TBank notification (no TerminalKey)"), None
    account = await sync_to_async(_tbank_account)(data["TerminalKey"])
    if account is None:
        return Verdict(NotificationVerdict.REJECTED, 400, "unknown TerminalKey"), None
    client = provider_client(PaymentScenario.TBANK, account_id=account[0], secret=account[1])
    assert isinstance(client, TBankClient)
    try:
        claimed = client.verify_notification(data)
    except InvalidNotification as exc:
        return Verdict(NotificationVerdict.REJECTED, 400, exc.detail), None
    found = await sync_to_async(_attempt_account)(
        PaymentScenario.TBANK, attempt_id=claimed.reference, provider_payment_id=claimed.provider_payment_id
    )
    if found is None or found.account_id != account[0]:
        return Verdict(NotificationVerdict.UNKNOWN_PAYMENT, 200, f"no attempt for OrderId {claimed.reference}"), None
    if claimed.outcome is PaymentOutcome.PENDING:  # moves nothing: no GetState (no amplification)
        return await _settled(found, claimed, claimed.provider_status)
    try:
        payment = await provider_payment_verified(
            attempt_id=found.attempt_id,
            payment_id=claimed.provider_payment_id,
            claimed=claimed.outcome,
            fetch=lambda: client.get_payment(claimed.provider_payment_id),
        )
    except ProviderRejected as exc:
        return Verdict(NotificationVerdict.MISMATCH, 200, f"GetState refused: {exc.detail}"), found.attempt_id
    except ProviderError as exc:
        return Verdict(NotificationVerdict.RETRY, 503, f"GetState failed: {exc.detail}"), found.attempt_id
    said = f"{claimed.provider_status} (GetState: {payment.provider_status})"
    return await _settled(found, payment, said)


_PROCESSORS = {PaymentScenario.YOOKASSA: yookassa_process, PaymentScenario.TBANK: tbank_process}


async def notification_process(provider: str, notification_id: int, body: bytes) -> Verdict:
    """Process a stored notification and record the verdict on its row. Any exception — a database error, a
    statement timeout, a bug — is recorded as verdict ``error`` with its traceback and answered 503, so the
    provider retries and staff can re-process it from the admin (dj-stripe's shape)."""
    try:
        verdict, attempt_id = await _PROCESSORS[provider](body)
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
    """Re-process a stored notification (admin action): the same checks and decision as on arrival, so a
    notification already applied is a no-op. Raises Notification.DoesNotExist."""
    stored = await Notification.objects.aget(pk=notification_id)
    if stored.body_truncated:  # refused on arrival and kept only in part: there is nothing to re-process
        return Verdict(stored.verdict, 200, "stored truncated when it was refused; not re-processed")
    return await notification_process(stored.provider, stored.pk, stored.body.encode("utf-8"))
