"""The bounded inbox: what a webhook request must pass before its body is stored whole (issue 11).

In order, all cheap (no provider call): the per-address rate limit (429, nothing stored — that is the flood), the
size (413), the content type (415), the shape of the provider's notification (400), for a signed one (TBank)
its account and signature (400), and whether it names a payment attempt of ours (else 200 ``unknown_payment``, no
provider call). A request refused after the rate limit is stored for staff with only the start of
its body, its size and its SHA-256 — never whole (an UPDATE that truncated it later would leave the whole body
in PostgreSQL's dead tuples until a vacuum); one that passes is stored whole and then processed
(``notifications.notification_process``). So is one we cannot check for a failure of ours — a merchant's
stored secret that no configured key decrypts: 503 ``error``, the provider retries, and staff can replay it
once the key is back.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from coffee_payment.devices.encryption import EncryptionKeyMissing, SecretUndecryptable
from coffee_payment.devices.models import ProviderAccount
from coffee_payment.devices.selectors import account_by_id, merchant_account
from coffee_payment.payments.models import Notification, NotificationVerdict, PaymentAttempt
from coffee_payment.payments.providers import get_provider
from coffee_payment.payments.providers.base import InvalidNotification, NotificationClaim
from coffee_payment.payments.ratelimit import rate_hit

# Characters of a rejected body kept for staff (enough to recognise a provider's payload or a probe).
REJECTED_BODY_CHARS = 1024
HEADER_VALUE_CHARS = 256
_JSON_TYPES = ("application/json",)


@dataclass(frozen=True)
class Refusal:
    """A request refused before processing: the ``verdict`` to store, ``http_status``, ``detail`` and, for 429,
    ``retry_after_s``."""

    verdict: str
    http_status: int
    detail: str
    retry_after_s: int | None = None


@dataclass(frozen=True)
class Admitted:
    """What the checks of an admitted notification found, handed to processing so it reads none of it again: the
    ``claim`` after the provider's shape and signature checks, the ``attempt`` it names (order and device loaded;
    None when not looked up yet) and the ``account``: for a claim naming its account (TBank's TerminalKey) that
    one, else the attempt merchant's for the provider (None when there is none or no attempt was looked up)."""

    claim: NotificationClaim
    attempt: PaymentAttempt | None
    account: ProviderAccount | None


@dataclass(frozen=True)
class Admission:
    """The stored notification's id (None when nothing was stored) and either the refusal or, for a notification
    to process, what its checks found (:class:`Admitted`)."""

    notification_id: int | None
    refusal: Refusal | None
    admitted: Admitted | None = None


def body_digest(body: bytes) -> str:
    """SHA-256 of the body as received, hex."""
    return hashlib.sha256(body).hexdigest()


def stored_text(body: bytes, *, limit: int | None = None) -> str:
    """The body as text for a ``TextField`` (PostgreSQL text has no NUL), cut to ``limit`` characters."""
    text = body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return text if limit is None else text[:limit]


def attempt_lookup(provider: str, *, attempt_id: str | None, provider_payment_id: str | None) -> PaymentAttempt | None:
    """The attempt a provider payment belongs to: by the provider payment id we stored when we created it; only
    when no attempt holds that id (its create answer was lost) by our reference, and then only an attempt that has
    no payment id yet. None when neither finds one."""
    query = PaymentAttempt.objects.select_related("order__device").filter(provider=provider)
    attempt = query.filter(provider_payment_id=provider_payment_id).first() if provider_payment_id else None
    if attempt is None and attempt_id:
        try:
            attempt = query.filter(pk=uuid.UUID(attempt_id), provider_payment_id=None).first()
        except ValueError:
            attempt = None
    return attempt


def missing_account(attempt: PaymentAttempt, provider: str) -> str:
    """Why a notification about ``attempt`` cannot be confirmed: its merchant has no account at ``provider``."""
    return f"merchant {attempt.order.device.merchant_id} has no {provider} account (attempt {attempt.id})"


def _rejected(detail: str) -> Refusal:
    return Refusal(NotificationVerdict.REJECTED, 400, detail)


def _shape_check(provider_name: str, body: bytes) -> Refusal | Admitted:
    """Why ``body`` is not a notification of the provider about a payment of ours, or what shows it is one: the
    provider's parser, and for a notification naming its account (TBank's TerminalKey) that account's signature
    check. A well-formed notification for no attempt of ours is answered 200 (``unknown_payment``) without a
    provider call. An account whose secret cannot be decrypted is our failure: 503 (``error``), the body kept
    whole for a replay, and the provider retries."""
    provider = get_provider(provider_name)
    account = None
    try:
        claim = provider.parse_notification(body)
        if claim.account_id is not None:
            account = account_by_id(provider.name, claim.account_id)
            if account is None:
                return _rejected(f"unknown {provider.account_field}")
            claim = provider.verify_notification(claim, secret=account.secret)
        attempt = attempt_lookup(
            provider.name, attempt_id=claim.attempt_id, provider_payment_id=claim.provider_payment_id
        )
        if attempt is None:
            return Refusal(NotificationVerdict.UNKNOWN_PAYMENT, 200, f"no attempt for {claim.names}")
        if account is None:  # the claim names no account (YooKassa): the one processing will use, read now
            account = merchant_account(attempt.order.device.merchant_id, provider.name)
            if account is None:  # our attempt, our misconfiguration: retried, kept whole for a replay
                return Refusal(NotificationVerdict.ERROR, 503, missing_account(attempt, provider.name))
        return Admitted(claim, attempt, account)
    except InvalidNotification as exc:
        return _rejected(exc.detail)
    except (SecretUndecryptable, EncryptionKeyMissing) as exc:  # reading an account decrypts its secret
        return Refusal(NotificationVerdict.ERROR, 503, f"{type(exc).__name__}: {exc}")


def _checked(provider: str, body: bytes, content_type: str) -> Refusal | Admitted:
    if len(body) > settings.NOTIFICATION_MAX_BODY_BYTES:
        return Refusal(NotificationVerdict.REJECTED, 413, f"body too large ({len(body)} bytes)")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in _JSON_TYPES:
        return Refusal(NotificationVerdict.REJECTED, 415, f"content type must be application/json, not {media_type!r}")
    return _shape_check(provider, body)


def inbox_admit(
    *, provider: str, body: bytes, content_type: str, headers: dict[str, str], remote_addr: str | None
) -> Admission:
    """Rate-limit, check and store one webhook request (one thread hop for all of it). Raises DatabaseError."""
    limit = rate_hit(scope=f"{provider}-webhook", client=remote_addr, limit=settings.RATE_LIMIT_WEBHOOK_PER_MINUTE)
    if not limit.allowed:
        return Admission(None, Refusal("", 429, "too many requests", retry_after_s=limit.retry_after_s))
    checked = _checked(provider, body, content_type)
    refusal, admitted = (checked, None) if isinstance(checked, Refusal) else (None, checked)
    row = Notification(
        provider=provider,
        headers={name: value[:HEADER_VALUE_CHARS] for name, value in headers.items()},
        remote_addr=remote_addr,
        body_bytes=len(body),
        body_sha256=body_digest(body),
    )
    if refusal is None or refusal.http_status >= 500:  # to process, or our failure: kept whole for a replay
        row.body = stored_text(body)
    else:
        row.body = stored_text(body[: REJECTED_BODY_CHARS * 4], limit=REJECTED_BODY_CHARS)
        row.body_truncated = len(row.body.encode("utf-8")) < len(body)
    if refusal is not None:
        row.verdict, row.detail, row.processed_at = refusal.verdict, refusal.detail[:500], timezone.now()
    row.save()
    return Admission(row.pk, refusal, admitted)
