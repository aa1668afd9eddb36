"""A third payment provider for tests, in memory (no sandbox, no HTTP): what a new provider module must implement
(``providers.base.PaymentProvider`` and ``ProviderClient``) and nothing more.

``FakeBank`` is the provider's side: payments by id with a status the test changes, as a customer paying would.
Notifications are unsigned JSON ``{"payment_id": ..., "reference": ...}``; the webhook answers ``accepted``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.http import HttpResponse

from coffee_payment.orders.state import PaymentOutcome
from coffee_payment.payments.providers.base import (
    AfterAmbiguousCreate,
    InvalidNotification,
    NotificationClaim,
    PaymentRequest,
    ProviderPayment,
    ProviderRejected,
)

_OUTCOMES = {"open": PaymentOutcome.PENDING, "paid": PaymentOutcome.SUCCEEDED, "void": PaymentOutcome.CANCELED}


@dataclass
class FakeBank:
    """Payments by id: ``{"status": "open"|"paid"|"void", "amount": kopecks, "reference": attempt id}``; ``calls``
    counts the client's calls by verb."""

    payments: dict[str, dict] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def count(self, verb: str) -> None:
        self.calls[verb] = self.calls.get(verb, 0) + 1

    def payment(self, payment_id: str) -> ProviderPayment:
        found = self.payments.get(payment_id)
        if found is None:
            raise ProviderRejected(f"no payment {payment_id}")
        return ProviderPayment(
            provider_payment_id=payment_id,
            outcome=_OUTCOMES[found["status"]],
            provider_status=found["status"],
            amount_kopecks=found["amount"],
            confirmation_url=f"https://fake.example/pay/{payment_id}" if found["status"] == "open" else None,
            reference=found["reference"],
            raw=dict(found),
        )


class FakeClient:
    """One merchant account at the fake bank (credentials are not checked)."""

    def __init__(self, bank: FakeBank) -> None:
        self.bank = bank

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        self.bank.count("create")
        payment_id = f"fp-{len(self.bank.payments) + 1}"
        self.bank.payments[payment_id] = {
            "status": "open",
            "amount": request.amount_kopecks,
            "reference": request.reference,
        }
        return self.bank.payment(payment_id)

    async def get_payment(self, provider_payment_id: str) -> ProviderPayment:
        self.bank.count("get")
        return self.bank.payment(provider_payment_id)

    async def refund(self, provider_payment_id: str, *, amount_kopecks: int, idempotency_key: str) -> str:
        self.bank.count("refund")
        self.bank.payments[provider_payment_id]["status"] = "void"
        return "void"

    async def after_ambiguous_create(self, reference: str) -> AfterAmbiguousCreate:
        return AfterAmbiguousCreate("retry")

    async def confirm_notification(self, claim: NotificationClaim) -> tuple[ProviderPayment, str | None]:
        return await self.get_payment(claim.provider_payment_id), None


class FakeProvider:
    """The registry entry (``PROVIDERS["fakepay"]`` in the tests that register it)."""

    name = "fakepay"
    label = "FakePay"
    webhook_path = "/v1/fakepay-webhook"
    fetch_label = "re-fetch"
    account_field = "account"

    def __init__(self) -> None:
        self.bank = FakeBank()

    def connect(self, *, account_id: str, secret: str) -> FakeClient:
        return FakeClient(self.bank)

    def parse_notification(self, body: bytes) -> NotificationClaim:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise InvalidNotification("not JSON") from exc
        if not isinstance(data, dict) or not isinstance(data.get("payment_id"), str):
            raise InvalidNotification("no payment_id")
        return NotificationClaim(
            event="fakepay.changed",
            provider_payment_id=data["payment_id"],
            status=None,
            attempt_id=data.get("reference"),
            names=f"payment {data['payment_id']}",
            raw=data,
        )

    def verify_notification(self, claim: NotificationClaim, *, secret: str) -> NotificationClaim:
        return claim

    def describe(self, claim: NotificationClaim, payment: ProviderPayment) -> tuple[str, bool]:
        return claim.event, False

    def webhook_response(self, http_status: int, reason: str) -> HttpResponse:
        return HttpResponse("accepted" if http_status == 200 else reason, status=http_status)
