"""The core ↔ provider boundary: frozen dataclasses in, frozen dataclasses out, errors by meaning.

Raw provider JSON stays inside the provider modules (``yookassa``, ``tbank``); the services see only these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.http import HttpResponse

from coffee_payment.orders.state import PaymentOutcome


def client_timeouts() -> dict[str, float]:
    """The provider call budget in seconds (``PROVIDER_CONNECT_TIMEOUT_S``, ``PROVIDER_READ_TIMEOUT_S``) as the
    clients' ``connect_timeout``/``read_timeout`` keyword arguments."""
    return {
        "connect_timeout": settings.PROVIDER_CONNECT_TIMEOUT_S,
        "read_timeout": settings.PROVIDER_READ_TIMEOUT_S,
    }


class ProviderError(Exception):
    """Base of provider errors. ``detail`` is safe to log (never contains secrets)."""

    def __init__(self, detail: str, *, raw: Any = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.raw = raw


class ProviderUnavailable(ProviderError):
    """Timeout, connection error or 5xx: the outcome is unknown. Retry the same attempt (same idempotency key)."""


class ProviderRejected(ProviderError):
    """The provider refused the request (4xx, or TBank ``Success: false``). Retrying the same request won't help."""


class ProviderMisconfigured(ProviderError):
    """Our side is wrong: bad credentials (401/403), missing account. Loud: an operator must act."""


class InvalidNotification(ProviderError):
    """A notification that is malformed or fails verification (bad token, unknown terminal). Answer 400."""


@dataclass(frozen=True)
class PaymentRequest:
    """What we ask a provider to create. ``amount_kopecks`` is an int; ``reference`` is our attempt id (TBank
    ``OrderId``, ≤ 36 chars); ``idempotency_key`` is persisted before the call and reused on retries."""

    reference: str
    order_id: str
    idempotency_key: str
    amount_kopecks: int
    description: str
    return_url: str
    notification_url: str
    email: str | None = None


@dataclass(frozen=True)
class ProviderPayment:
    """A provider payment as the provider reports it. ``amount_kopecks`` int; ``currency`` ISO code;
    ``confirmation_url`` is where to send the customer (None once final); ``reference`` echoes our attempt id
    when the provider carries it (YooKassa ``metadata.attempt_id``, TBank ``OrderId``)."""

    provider_payment_id: str
    outcome: PaymentOutcome
    provider_status: str
    amount_kopecks: int
    currency: str = "RUB"
    confirmation_url: str | None = None
    reference: str | None = None
    order_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class NotificationClaim:
    """What a provider notification *claims* (the caller still confirms it with the provider before it moves money).

    ``event`` labels it in verdicts (YooKassa ``event``, TBank ``Status``); ``attempt_id`` is our reference when
    the notification carries it (YooKassa ``metadata.attempt_id``, TBank ``OrderId``); ``status`` is the provider
    status it states; ``claimed`` that status as an outcome (None: no specific outcome); ``account_id`` is the
    merchant account it names (TBank ``TerminalKey``; None when the account is found through the attempt);
    ``signed`` is the payment the notification proves by its own signature (None for unsigned notifications)."""

    event: str
    provider_payment_id: str
    status: str | None
    attempt_id: str | None
    refund_id: str | None = None
    claimed: PaymentOutcome | None = None
    account_id: str | None = None
    signed: ProviderPayment | None = None
    names: str = ""  # how the claim names its payment in messages ("payment 2f00…", "OrderId …")
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class AfterAmbiguousCreate:
    """What to do after a create whose outcome was unknown (a timeout), found by asking the provider:
    ``retry`` — send the same create again (same idempotency key); ``paid`` — the provider already has ``payment``
    paid; ``fresh`` — the orphan payment(s) were canceled: close the attempt with ``detail`` and start a new one."""

    action: str  # "retry" | "paid" | "fresh"
    payment: ProviderPayment | None = None
    detail: str = ""


class ProviderClient(Protocol):
    """One merchant account at a provider: the calls that need its credentials. Raises ProviderUnavailable /
    ProviderRejected / ProviderMisconfigured."""

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment: ...

    async def get_payment(self, provider_payment_id: str) -> ProviderPayment: ...

    async def refund(self, provider_payment_id: str, *, amount_kopecks: int, idempotency_key: str) -> str:
        """Refund the whole ``amount_kopecks``; returns the provider's status of the refund."""
        ...

    async def after_ambiguous_create(self, reference: str) -> AfterAmbiguousCreate:
        """Before re-sending a create whose outcome was unknown: what the provider has for ``reference``."""
        ...

    async def confirm_notification(self, claim: NotificationClaim) -> tuple[ProviderPayment, str | None]:
        """Re-read the payment ``claim`` names. Returns the provider's answer and, when the provider contradicts a
        detail of the claim (e.g. the refund it names belongs to another payment), why (else None)."""
        ...


class PaymentProvider(Protocol):
    """A provider as the generic code sees it (registry: ``providers.PROVIDERS``). ``name`` is the value stored in
    ``provider`` columns (their choices come from the registry: ``providers.provider_choices``), ``label`` how the
    admin shows it; ``webhook_path`` is where its notifications arrive (``/v1/...``); ``fetch_label`` names
    the confirming call in verdicts (``re-fetch``, ``GetState``); ``account_field`` names the field a notification
    names its account by (``TerminalKey``; unused when claims carry no ``account_id``)."""

    name: str
    label: str
    webhook_path: str
    fetch_label: str
    account_field: str

    def connect(self, *, account_id: str, secret: str) -> ProviderClient:
        """A client for one merchant account (call on the running event loop)."""
        ...

    def parse_notification(self, body: bytes) -> NotificationClaim:
        """The shape checks (no secrets, no I/O). Raises InvalidNotification."""
        ...

    def verify_notification(self, claim: NotificationClaim, *, secret: str) -> NotificationClaim:
        """The authenticity checks with the account's ``secret`` (identity for unsigned notifications).
        Raises InvalidNotification."""
        ...

    def describe(self, claim: NotificationClaim, payment: ProviderPayment) -> tuple[str, bool]:
        """How a settled notification is described in its verdict, and whether claim and provider disagree."""
        ...

    def webhook_response(self, http_status: int, reason: str) -> HttpResponse:
        """The webhook's answer in the provider's format (``reason`` is shown only for a non-200)."""
        ...
