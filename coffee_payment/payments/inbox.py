"""The bounded inbox: what a webhook request must pass before its body is stored whole (issue 11).

In order, all cheap (no provider call): the per-address rate limit (429, nothing stored — that is the flood), the
size (413), the content type (415), the JSON shape of the provider's notification (400) and, for TBank, the
TerminalKey and Token (400). A request refused after the rate limit is stored for staff with only the start of
its body, its size and its SHA-256 — never whole; one that passes is stored whole and then processed
(``notifications.notification_process``), which truncates it in turn if processing rejects it or finds no payment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from coffee_payment.devices.models import PaymentScenario, ProviderAccount
from coffee_payment.jsonbody import BadJson, parse_json
from coffee_payment.payments.models import Notification, NotificationVerdict
from coffee_payment.payments.providers.base import InvalidNotification
from coffee_payment.payments.providers.tbank_token import tbank_token_valid
from coffee_payment.payments.providers.yookassa import parse_notification
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
class Admission:
    """The stored notification's id (None when nothing was stored) and the refusal, if any."""

    notification_id: int | None
    refusal: Refusal | None


def body_digest(body: bytes) -> str:
    """SHA-256 of the body as received, hex."""
    return hashlib.sha256(body).hexdigest()


def stored_text(body: bytes, *, limit: int | None = None) -> str:
    """The body as text for a ``TextField`` (PostgreSQL text has no NUL), cut to ``limit`` characters."""
    text = body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return text if limit is None else text[:limit]


def _tbank_token_refusal(data: dict[str, Any]) -> str | None:
    account = ProviderAccount.objects.filter(provider=PaymentScenario.TBANK, account_id=data["TerminalKey"]).first()
    if account is None:
        return "unknown TerminalKey"
    return None if tbank_token_valid(data, account.secret) else "bad Token"


def _shape_refusal(provider: str, body: bytes) -> str | None:
    """Why ``body`` is not a notification of ``provider`` (None when it is one): the provider's parser for
    YooKassa; for TBank a JSON object with a TerminalKey and a valid Token."""
    if provider == PaymentScenario.YOOKASSA:
        try:
            parse_notification(body)
        except InvalidNotification as exc:
            return exc.detail
        return None
    try:
        data = parse_json(body)
    except BadJson as exc:
        return str(exc)
    if not isinstance(data, dict) or not isinstance(data.get("TerminalKey"), str):
        return "not a TBank notification (no TerminalKey)"
    return _tbank_token_refusal(data)


def _refusal(provider: str, body: bytes, content_type: str) -> Refusal | None:
    if len(body) > settings.NOTIFICATION_MAX_BODY_BYTES:
        return Refusal(NotificationVerdict.REJECTED, 413, f"body too large ({len(body)} bytes)")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in _JSON_TYPES:
        return Refusal(NotificationVerdict.REJECTED, 415, f"content type must be application/json, not {media_type!r}")
    problem = _shape_refusal(provider, body)
    return None if problem is None else Refusal(NotificationVerdict.REJECTED, 400, problem)


def inbox_admit(
    *, provider: str, body: bytes, content_type: str, headers: dict[str, str], remote_addr: str | None
) -> Admission:
    """Rate-limit, check and store one webhook request (one thread hop for all of it). Raises DatabaseError."""
    limit = rate_hit(scope=f"{provider}-webhook", client=remote_addr, limit=settings.RATE_LIMIT_WEBHOOK_PER_MINUTE)
    if not limit.allowed:
        return Admission(None, Refusal("", 429, "too many requests", retry_after_s=limit.retry_after_s))
    refusal = _refusal(provider, body, content_type)
    row = Notification(
        provider=provider,
        headers={name: value[:HEADER_VALUE_CHARS] for name, value in headers.items()},
        remote_addr=remote_addr,
        body_bytes=len(body),
        body_sha256=body_digest(body),
    )
    if refusal is None:
        row.body = stored_text(body)
    else:
        row.body = stored_text(body[: REJECTED_BODY_CHARS * 4], limit=REJECTED_BODY_CHARS)
        row.body_truncated = len(row.body.encode("utf-8")) < len(body)
        row.verdict, row.detail, row.processed_at = refusal.verdict, refusal.detail[:500], timezone.now()
    row.save()
    return Admission(row.pk, refusal)
