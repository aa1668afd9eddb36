"""The core ↔ provider boundary: frozen dataclasses in, frozen dataclasses out, errors by meaning.

Raw provider JSON stays inside the provider modules (``yookassa``, ``tbank``); the services see only these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from coffee_payment.orders.state import PaymentOutcome


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


class PaymentProvider(Protocol):
    """The verbs the core needs from a provider (implemented by ``YooKassaClient`` and ``TBankClient``)."""

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment: ...

    async def get_payment(self, provider_payment_id: str) -> ProviderPayment: ...
