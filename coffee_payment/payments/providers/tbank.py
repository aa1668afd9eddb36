"""TBank (Tinkoff) internet acquiring API v2 client on httpx.

Source: https://www.tbank.ru/kassa/dev/payments/ (Init, GetState, CheckOrder, notifications) and docs/domain.md §4.
Errors arrive with HTTP 200 and ``Success: false``: we check ``Success``, not the HTTP status.
"""

from __future__ import annotations

from typing import Any

import httpx

from coffee_payment.orders.state import PaymentOutcome
from coffee_payment.payments.providers.base import (
    InvalidNotification,
    PaymentRequest,
    ProviderMisconfigured,
    ProviderPayment,
    ProviderRejected,
    ProviderUnavailable,
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
        """Check a notification's TerminalKey and Token (over whatever scalar fields arrived; constant-time
        compare) and return the payment it reports. Raises InvalidNotification."""
        if data.get("TerminalKey") != self.terminal_key:
            raise InvalidNotification("TerminalKey does not match this terminal")
        if not tbank_token_valid(data, self._password):
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
