"""TBank (Tinkoff) internet acquiring API v2 client on httpx.

Source: https://www.tbank.ru/kassa/dev/payments/ (Init, GetState, CheckOrder, notifications) and docs/domain.md §4.
Errors arrive with HTTP 200 and ``Success: false``: we check ``Success``, not the HTTP status.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
from django.conf import settings
from django.http import HttpResponse

from coffee_payment.integrations.http import shared_client
from coffee_payment.jsonbody import BadJson, parse_json
from coffee_payment.orders.state import PaymentOutcome
from coffee_payment.payments.providers.base import (
    AfterAmbiguousCreate,
    InvalidNotification,
    NotificationClaim,
    PaymentRequest,
    ProviderError,
    ProviderMisconfigured,
    ProviderPayment,
    ProviderRejected,
    ProviderUnavailable,
    client_timeouts,
)
from coffee_payment.payments.providers.tbank_token import tbank_token, tbank_token_valid

_PENDING = ("NEW", "FORM_SHOWED", "AUTHORIZING", "3DS_CHECKING", "3DS_CHECKED", "AUTHORIZED", "CONFIRMING")
_NOT_PAID = ("REJECTED", "AUTH_FAIL", "DEADLINE_EXPIRED", "ATTEMPTS_EXPIRED", "CANCELED", "REVERSED")
STATUS_MAP: dict[str, PaymentOutcome] = {
    **{status: PaymentOutcome.PENDING for status in _PENDING},
    "CONFIRMED": PaymentOutcome.SUCCEEDED,
    **{status: PaymentOutcome.CANCELED for status in _NOT_PAID},
    "REFUNDED": PaymentOutcome.REFUNDED,
    "PARTIAL_REFUNDED": PaymentOutcome.REFUNDED,
}
# ErrorCodes that mean our terminal settings are wrong (token/terminal), not that the payment was refused.
_MISCONFIGURED_CODES = {"202", "204", "205", "501"}


def map_status(status: Any) -> PaymentOutcome:
    """Normalise a TBank ``Status``; an unknown status is treated as pending (new statuses appear over time and
    must not move an order), never as paid."""
    return STATUS_MAP.get(status, PaymentOutcome.PENDING) if isinstance(status, str) else PaymentOutcome.PENDING


def verified_payment(data: dict[str, Any], *, terminal_key: str, password: str) -> ProviderPayment:
    """Check a notification's TerminalKey and Token (over whatever scalar fields arrived; constant-time compare)
    and return the payment it reports. Raises InvalidNotification."""
    if data.get("TerminalKey") != terminal_key:
        raise InvalidNotification("TerminalKey does not match this terminal")
    if not tbank_token_valid(data, password):
        raise InvalidNotification("bad Token")
    payment_id, amount = data.get("PaymentId"), data.get("Amount")
    if isinstance(payment_id, bool) or not isinstance(payment_id, (int, str)) or not str(payment_id).strip():
        raise InvalidNotification("PaymentId missing")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidNotification("Amount missing or not an integer")
    return ProviderPayment(
        provider_payment_id=str(payment_id),
        outcome=map_status(data.get("Status")),
        provider_status=str(data.get("Status")),
        amount_kopecks=amount,
        reference=str(data.get("OrderId") or ""),
        raw=data,
    )


class TBankClient:
    """One merchant's TBank terminal. ``base_url`` like ``https://securepay.tinkoff.ru/v2/``; timeouts in seconds."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        terminal_key: str,
        password: str,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self._http = http
        self._base = base_url if base_url.endswith("/") else base_url + "/"
        self.terminal_key = terminal_key
        self._password = password
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        """``Init``. TBank has no idempotency header: after an ambiguous Init (ProviderUnavailable) the caller must
        ``check_order`` before creating another. Raises ProviderUnavailable / ProviderRejected /
        ProviderMisconfigured."""
        body: dict[str, Any] = {
            "Amount": request.amount_kopecks,
            "OrderId": request.reference,
            "Description": request.description[:140],
            "NotificationURL": request.notification_url,
            "SuccessURL": request.return_url,
            "FailURL": request.return_url,
            "PayType": "O",
            "DATA": {"OrderUuid": request.order_id, **({"Email": request.email} if request.email else {})},
        }
        data = await self._call("Init", body)
        return self._payment(data, fallback_amount=request.amount_kopecks)

    async def get_payment(self, provider_payment_id: str) -> ProviderPayment:
        """``GetState``: the current status of a payment."""
        data = await self._call("GetState", {"PaymentId": provider_payment_id})
        return self._payment(data)

    async def check_order(self, reference: str) -> list[ProviderPayment]:
        """``CheckOrder``: every payment TBank has for our ``OrderId`` (empty when Init never reached it)."""
        data = await self._call("CheckOrder", {"OrderId": reference})
        payments = data.get("Payments") or []
        return [
            ProviderPayment(
                provider_payment_id=str(item["PaymentId"]),
                outcome=map_status(item.get("Status")),
                provider_status=str(item.get("Status")),
                amount_kopecks=int(item.get("Amount", 0)),
                reference=reference,
                raw=item,
            )
            for item in payments
            if isinstance(item, dict) and "PaymentId" in item
        ]

    async def cancel(self, provider_payment_id: str) -> ProviderPayment:
        """``Cancel`` (full amount): NEW → CANCELED, AUTHORIZED → REVERSED, CONFIRMED → REFUNDED. Raises
        ProviderUnavailable / ProviderRejected / ProviderMisconfigured."""
        data = await self._call("Cancel", {"PaymentId": provider_payment_id})
        return ProviderPayment(
            provider_payment_id=str(data.get("PaymentId", provider_payment_id)),
            outcome=map_status(data.get("Status")),
            provider_status=str(data.get("Status")),
            amount_kopecks=int(data.get("OriginalAmount") or data.get("Amount") or 0),
            reference=data.get("OrderId"),
            raw=data,
        )

    def verify_notification(self, data: dict[str, Any]) -> ProviderPayment:
        """Check a notification's TerminalKey and Token and return the payment it reports (``verified_payment``).
        Raises InvalidNotification."""
        return verified_payment(data, terminal_key=self.terminal_key, password=self._password)

    async def refund(self, provider_payment_id: str, *, amount_kopecks: int, idempotency_key: str) -> str:
        """The protocol's refund: ``Cancel`` of the full amount (TBank has no idempotency key; a repeated Cancel
        of a refunded payment is refused)."""
        return (await self.cancel(provider_payment_id)).provider_status

    async def after_ambiguous_create(self, reference: str) -> AfterAmbiguousCreate:
        """TBank has no idempotency key: before re-sending Init for an attempt whose Init timed out, ask
        ``CheckOrder``. Nothing there: re-send Init. A paid payment: ``paid``. Open ones have no PaymentURL we can
        recover: they are canceled — so they can never be paid next to the one the customer will pay — and the
        attempt must start afresh (new OrderId). Raises ProviderUnavailable (CheckOrder or a cancel failed: the
        attempt stays open and the next tap tries again)."""
        found = await self.check_order(reference)
        if not found:
            return AfterAmbiguousCreate("retry")
        for payment in found:
            if payment.outcome is PaymentOutcome.SUCCEEDED:
                return AfterAmbiguousCreate("paid", payment)
        for payment in found:
            if payment.outcome is PaymentOutcome.PENDING:
                try:
                    await self.cancel(payment.provider_payment_id)
                except ProviderError as exc:  # never close the attempt while its payment may still be paid
                    raise ProviderUnavailable(f"cancel of the orphan TBank payment failed: {exc.detail}") from exc
        return AfterAmbiguousCreate(
            "fresh", detail="Init outcome was unknown; the orphan payment was canceled at TBank"
        )

    async def confirm_notification(self, claim: NotificationClaim) -> tuple[ProviderPayment, str | None]:
        """``GetState`` of the payment the (signed) notification names."""
        return await self.get_payment(claim.provider_payment_id), None

    async def _call(self, method: str, fields: dict[str, Any]) -> dict[str, Any]:
        body = {"TerminalKey": self.terminal_key, **fields}
        body["Token"] = tbank_token(body, self._password)
        try:
            response = await self._http.post(self._base + method, json=body, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"TBank {method}: timeout") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"TBank {method}: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(f"TBank {method}: HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderUnavailable(f"TBank {method}: HTTP {response.status_code}, body is not JSON") from exc
        if not isinstance(data, dict):
            raise ProviderUnavailable(f"TBank {method}: response is not a JSON object")
        if response.status_code >= 400 or data.get("Success") is not True:
            code = str(data.get("ErrorCode", ""))
            detail = f"TBank {method}: ErrorCode {code}: {data.get('Message')} {data.get('Details') or ''}".strip()
            if code in _MISCONFIGURED_CODES or response.status_code in (401, 403):
                raise ProviderMisconfigured(detail, raw=data)
            raise ProviderRejected(detail, raw=data)
        return data

    @staticmethod
    def _payment(data: dict[str, Any], *, fallback_amount: int | None = None) -> ProviderPayment:
        try:
            return ProviderPayment(
                provider_payment_id=str(data["PaymentId"]),
                outcome=map_status(data.get("Status")),
                provider_status=str(data.get("Status")),
                amount_kopecks=int(data.get("Amount", fallback_amount)),
                confirmation_url=data.get("PaymentURL"),
                reference=data.get("OrderId"),
                raw=data,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderUnavailable(f"TBank response malformed: {exc!r}", raw=data) from exc


class TBank:
    """The TBank provider (registry entry ``providers.PROVIDERS["tbank"]``): signed notifications (TerminalKey +
    Token) confirmed by ``GetState``; the webhook answers HTTP 200 with body ``OK``."""

    name = "tbank"
    label = "TBank"
    webhook_path = "/v1/tbank-webhook"
    fetch_label = "GetState"
    account_field = "TerminalKey"

    def connect(self, *, account_id: str, secret: str) -> TBankClient:
        return TBankClient(
            shared_client(),
            base_url=settings.TBANK_API_URL,
            terminal_key=account_id,
            password=secret,
            **client_timeouts(),
        )

    def parse_notification(self, body: bytes) -> NotificationClaim:
        """A JSON object naming a terminal (``TerminalKey``); the rest is checked with the terminal's password in
        ``verify_notification``. Raises InvalidNotification."""
        try:
            data: Any = parse_json(body)
        except BadJson as exc:
            raise InvalidNotification(str(exc)) from exc
        if not isinstance(data, dict) or not isinstance(data.get("TerminalKey"), str):
            raise InvalidNotification("not a TBank notification (no TerminalKey)")
        payment_id, reference = data.get("PaymentId"), data.get("OrderId")
        return NotificationClaim(
            event=str(data.get("Status")),
            provider_payment_id=str(payment_id) if payment_id is not None else "",
            status=str(data.get("Status")),
            attempt_id=str(reference) if reference else None,
            account_id=data["TerminalKey"],
            names=f"OrderId {reference}",
            raw=data,
        )

    def verify_notification(self, claim: NotificationClaim, *, secret: str) -> NotificationClaim:
        """TerminalKey, Token, PaymentId and Amount (``tbank.verified_payment``): the claim then carries the signed
        payment. Raises InvalidNotification."""
        payment = verified_payment(claim.raw, terminal_key=claim.account_id or "", password=secret)
        return dataclasses.replace(
            claim,
            provider_payment_id=payment.provider_payment_id,
            attempt_id=payment.reference or None,
            claimed=payment.outcome,
            signed=payment,
            names=f"OrderId {payment.reference}",
        )

    def describe(self, claim: NotificationClaim, payment: ProviderPayment) -> tuple[str, bool]:
        return f"{claim.status} (GetState: {payment.provider_status})", False

    def webhook_response(self, http_status: int, reason: str) -> HttpResponse:
        if http_status == 200:  # exactly "OK", else TBank retries (duplicates too)
            return HttpResponse("OK", content_type="text/plain")
        return HttpResponse(reason, status=http_status, content_type="text/plain")
