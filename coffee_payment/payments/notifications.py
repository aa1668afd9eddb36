"""Processing of provider notifications (dj-stripe shape): cheap rejects first, the raw notification stored
before processing, verify, apply through ``payment_settle``, keep the verdict on the stored row.

HTTP answers (domain.md §3, §4): processed, duplicate, stale or unknown → 200 (TBank: body ``OK``); malformed or
forged → 400; our transient failure → 503 so the provider retries.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from coffee_payment.devices.models import PaymentScenario, ProviderAccount
from coffee_payment.jsonbody import BadJson, parse_json
from coffee_payment.payments.models import Notification, NotificationVerdict, PaymentAttempt
from coffee_payment.payments.providers import provider_client
from coffee_payment.payments.providers.base import (
    InvalidNotification,
    ProviderError,
    ProviderRejected,
)
from coffee_payment.payments.providers.tbank import TBankClient
from coffee_payment.payments.providers.yookassa import parse_notification
from coffee_payment.payments.services import payment_settle

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Verdict:
    """How a notification was handled: the stored ``verdict``, the HTTP status to answer and a ``detail``."""

    verdict: str
    http_status: int
    detail: str


def notification_store(*, provider: str, body: bytes, headers: dict[str, str], remote_addr: str | None) -> int:
    """Store the raw notification before anything else; returns its id."""
    return Notification.objects.create(
        provider=provider,
        body=body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),  # PostgreSQL text has no NUL
        headers=headers,
        remote_addr=remote_addr,
    ).pk


def notification_record(notification_id: int, verdict: Verdict, attempt_id: str | None = None) -> None:
    """Keep the verdict (and the attempt it concerned) on the stored row."""
    Notification.objects.filter(pk=notification_id).update(
        verdict=verdict.verdict, detail=verdict.detail[:500], attempt_id=attempt_id
    )


@dataclass(frozen=True)
class _AttemptAccount:
    attempt_id: str
    provider_payment_id: str | None
    account_id: str
    secret: str


def _attempt_account(
    provider: str, *, attempt_id: str | None, provider_payment_id: str | None
) -> _AttemptAccount | None:
    query = PaymentAttempt.objects.select_related("order__device").filter(provider=provider)
    attempt = None
    if attempt_id:
        try:
            attempt = query.filter(pk=uuid.UUID(attempt_id)).first()
        except ValueError:
            attempt = None
    if attempt is None and provider_payment_id:
        attempt = query.filter(provider_payment_id=provider_payment_id).first()
    if attempt is None:
        return None
    account = ProviderAccount.objects.filter(merchant_id=attempt.order.device.merchant_id, provider=provider).first()
    if account is None:
        return None
    return _AttemptAccount(str(attempt.id), attempt.provider_payment_id, account.account_id, account.secret)


async def yookassa_process(body: bytes) -> tuple[Verdict, str | None]:
    """Verify a YooKassa notification by re-fetching the payment with the merchant's credentials (YooKassa
    notifications carry no signature) and settle the re-fetched status. Returns (verdict, attempt id)."""
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
    try:
        payment = await client.get_payment(claim.provider_payment_id)
    except ProviderRejected as exc:  # e.g. 404: the payment does not exist in this shop
        return Verdict(NotificationVerdict.MISMATCH, 200, f"re-fetch refused: {exc.detail}"), found.attempt_id
    except ProviderError as exc:
        return Verdict(NotificationVerdict.RETRY, 503, f"re-fetch failed: {exc.detail}"), found.attempt_id
    # Trust only the re-fetched payment, and only if it is the one claimed and belongs to this attempt (our
    # create always sets metadata.attempt_id).
    if (
        payment.provider_payment_id != claim.provider_payment_id
        or payment.reference != found.attempt_id
        or found.provider_payment_id not in (None, payment.provider_payment_id)
    ):
        return Verdict(
            NotificationVerdict.MISMATCH, 200, "re-fetched payment belongs to another attempt"
        ), found.attempt_id
    result = await payment_settle(attempt_id=found.attempt_id, payment=payment)
    said = f"notification said {claim.status}, provider says {payment.provider_status}"
    if claim.status and claim.status != payment.provider_status:
        return Verdict(NotificationVerdict.MISMATCH, 200, f"{said}; applied the provider's"), found.attempt_id
    verdict = NotificationVerdict.APPLIED if result.changed else NotificationVerdict.NO_CHANGE
    return Verdict(verdict, 200, f"{claim.event}: {result.reason} → {result.order_status}"), found.attempt_id


def _tbank_account(terminal_key: str) -> tuple[str, str] | None:
    account = ProviderAccount.objects.filter(provider=PaymentScenario.TBANK, account_id=terminal_key).first()
    return (account.account_id, account.secret) if account else None


async def tbank_process(body: bytes) -> tuple[Verdict, str | None]:
    """Verify a TBank notification's TerminalKey and Token, find the attempt by ``OrderId`` (our attempt id; the
    notification's ``Data`` is not an echo of Init's ``DATA``) and settle its status."""
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
        payment = client.verify_notification(data)
    except InvalidNotification as exc:
        return Verdict(NotificationVerdict.REJECTED, 400, exc.detail), None
    found = await sync_to_async(_attempt_account)(
        PaymentScenario.TBANK, attempt_id=payment.reference, provider_payment_id=payment.provider_payment_id
    )
    if found is None or found.account_id != account[0]:
        return Verdict(NotificationVerdict.UNKNOWN_PAYMENT, 200, f"no attempt for OrderId {payment.reference}"), None
    result = await payment_settle(attempt_id=found.attempt_id, payment=payment)
    verdict = NotificationVerdict.APPLIED if result.changed else NotificationVerdict.NO_CHANGE
    return Verdict(
        verdict, 200, f"{payment.provider_status}: {result.reason} → {result.order_status}"
    ), found.attempt_id
