"""YooKassa API v3 client on httpx (not the official SDK: it has no request timeout and global credentials).

Source: https://yookassa.ru/developers/api (payments, idempotence, notifications) and docs/domain.md §3.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings
from django.http import HttpResponse, JsonResponse

from coffee_payment.integrations.http import shared_client
from coffee_payment.jsonbody import BadJson, parse_json
from coffee_payment.orders.state import PaymentOutcome
from coffee_payment.payments.money import format_rubles, parse_rubles
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

# YooKassa payment ids are UUID-shaped ("2f0000aa-000f-5000-9000-1b2c3d4e5f60"); anything else is refused before it
# reaches a URL path.
PAYMENT_ID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}")

STATUS_MAP = {
    "pending": PaymentOutcome.PENDING,
    # We create payments with capture=true, so this is transient; the money is not ours yet.
    "waiting_for_capture": PaymentOutcome.PENDING,
    "succeeded": PaymentOutcome.SUCCEEDED,
    "canceled": PaymentOutcome.CANCELED,
}


def map_status(payment: dict[str, Any]) -> PaymentOutcome:
    """Normalise a YooKassa payment object's status; a fully refunded succeeded payment is REFUNDED.
    Raises ProviderError for an unknown status."""
    status = payment.get("status")
    if status not in STATUS_MAP:
        raise ProviderError(f"unknown YooKassa payment status {status!r}", raw=payment)
    outcome = STATUS_MAP[status]
    refunded = (payment.get("refunded_amount") or {}).get("value")
    amount = (payment.get("amount") or {}).get("value")
    if outcome is PaymentOutcome.SUCCEEDED and refunded and amount and parse_rubles(refunded) >= parse_rubles(amount):
        return PaymentOutcome.REFUNDED
    return outcome


def parse_notification(body: bytes) -> NotificationClaim:
    """Parse a notification body (what it claims: YooKassa notifications carry no signature). Raises
    InvalidNotification for a body that is not a notification object (no ``object``, or a non-object ``object`` —
    the official SDK's parser accepts those; we don't)."""
    try:
        data = parse_json(body)
    except BadJson as exc:
        raise InvalidNotification(str(exc)) from exc
    if not isinstance(data, dict) or data.get("type") != "notification":
        raise InvalidNotification("not a YooKassa notification (type != 'notification')")
    event, obj = data.get("event"), data.get("object")
    if not isinstance(event, str) or not isinstance(obj, dict):
        raise InvalidNotification("notification needs a string 'event' and an object 'object'")
    key = "payment_id" if event.startswith("refund.") else "id"
    payment_id = obj.get(key)
    if not isinstance(payment_id, str) or not PAYMENT_ID_RE.fullmatch(payment_id):
        raise InvalidNotification(f"notification object has no valid '{key}'")
    metadata = obj.get("metadata")
    attempt_id = metadata.get("attempt_id") if isinstance(metadata, dict) else None
    status = obj.get("status") if isinstance(obj.get("status"), str) else None
    refund_id = obj.get("id") if event.startswith("refund.") else None
    if refund_id is not None and (not isinstance(refund_id, str) or not PAYMENT_ID_RE.fullmatch(refund_id)):
        raise InvalidNotification("refund notification object has no valid 'id'")
    return NotificationClaim(
        event=event,
        provider_payment_id=payment_id,
        status=status,
        attempt_id=attempt_id if isinstance(attempt_id, str) else None,
        refund_id=refund_id,
        claimed=PaymentOutcome.REFUNDED if refund_id is not None else STATUS_MAP.get(status) if status else None,
        names=f"payment {payment_id}",
        raw=data,
    )


@dataclass(frozen=True)
class YooKassaRefund:
    """A refund as ``GET /v3/refunds/{id}`` reports it; ``amount_kopecks`` int."""

    refund_id: str
    payment_id: str
    status: str
    amount_kopecks: int


class YooKassaClient:
    """One merchant's YooKassa shop. ``base_url`` like ``https://api.yookassa.ru/v3/``; timeouts in seconds."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        shop_id: str,
        secret_key: str,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self._http = http
        self._base = base_url if base_url.endswith("/") else base_url + "/"
        self._auth = httpx.BasicAuth(shop_id, secret_key)
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        """``POST payments`` with the attempt's ``Idempotence-Key`` (same key + same body = same payment, so a
        retry after a timeout is safe). Raises ProviderUnavailable / ProviderRejected / ProviderMisconfigured."""
        body: dict[str, Any] = {
            "amount": {"value": format_rubles(request.amount_kopecks), "currency": "RUB"},
            "capture": True,
            "confirmation": {"type": "redirect", "return_url": request.return_url},
            "description": request.description[:128],
            "metadata": {"order_id": request.order_id, "attempt_id": request.reference},
        }
        if request.email:
            body["metadata"]["customer_email"] = request.email
        data = await self._call("POST", "payments", json=body, headers={"Idempotence-Key": request.idempotency_key})
        return self._payment(data)

    async def get_payment(self, provider_payment_id: str) -> ProviderPayment:
        """``GET payments/{id}``: the truth about a payment (used to verify notifications)."""
        if not PAYMENT_ID_RE.fullmatch(provider_payment_id):  # it goes into the URL path
            raise ProviderRejected(f"not a YooKassa payment id: {provider_payment_id[:70]!r}")
        data = await self._call("GET", f"payments/{quote(provider_payment_id, safe='')}")
        return self._payment(data)

    async def get_refund(self, refund_id: str) -> YooKassaRefund:
        """``GET refunds/{id}``: confirms a ``refund.succeeded`` notification (they carry no signature).
        Raises ProviderRejected (unknown refund, malformed id), ProviderUnavailable, ProviderMisconfigured."""
        if not PAYMENT_ID_RE.fullmatch(refund_id):
            raise ProviderRejected(f"not a YooKassa refund id: {refund_id[:70]!r}")
        data = await self._call("GET", f"refunds/{quote(refund_id, safe='')}")
        try:
            return YooKassaRefund(
                refund_id=str(data["id"]),
                payment_id=str(data["payment_id"]),
                status=str(data["status"]),
                amount_kopecks=parse_rubles(data["amount"]["value"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderUnavailable(f"YooKassa refund object malformed: {exc!r}", raw=data) from exc

    async def refund_payment(self, provider_payment_id: str, *, amount_kopecks: int, idempotency_key: str) -> str:
        """``POST refunds`` ``{payment_id, amount}`` with ``Idempotence-Key`` (the same key on a retry of the same
        refund). Returns the refund's status (``succeeded``/``pending``/``canceled``). Raises ProviderError."""
        body = {
            "payment_id": provider_payment_id,
            "amount": {"value": format_rubles(amount_kopecks), "currency": "RUB"},
        }
        data = await self._call("POST", "refunds", json=body, headers={"Idempotence-Key": idempotency_key})
        return str(data.get("status", ""))

    async def refund(self, provider_payment_id: str, *, amount_kopecks: int, idempotency_key: str) -> str:
        """The protocol's refund: ``POST refunds`` (``refund_payment``)."""
        return await self.refund_payment(
            provider_payment_id, amount_kopecks=amount_kopecks, idempotency_key=idempotency_key
        )

    async def after_ambiguous_create(self, reference: str) -> AfterAmbiguousCreate:
        """YooKassa keeps the payment by ``Idempotence-Key``: re-sending the same create is safe."""
        return AfterAmbiguousCreate("retry")

    async def confirm_notification(self, claim: NotificationClaim) -> tuple[ProviderPayment, str | None]:
        """``GET payments/{id}`` and, for a ``refund.*`` claim the payment does not show as refunded yet, ``GET
        refunds/{id}``: a refund of this payment that succeeded for the whole amount makes the payment REFUNDED
        even before its ``refunded_amount`` shows it. The second value says why the refund claim was refused."""
        payment = await self.get_payment(claim.provider_payment_id)
        if claim.refund_id is None or payment.outcome is PaymentOutcome.REFUNDED:
            return payment, None
        try:
            refund = await self.get_refund(claim.refund_id)
        except ProviderRejected as exc:
            return payment, f"refund re-fetch refused: {exc.detail}"
        if refund.payment_id != payment.provider_payment_id:
            return payment, "refund belongs to another payment"
        if refund.status == "succeeded" and refund.amount_kopecks >= payment.amount_kopecks:
            return dataclasses.replace(payment, outcome=PaymentOutcome.REFUNDED), None
        return payment, None

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(
                method, self._base + path, auth=self._auth, timeout=self._timeout, **kwargs
            )
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"YooKassa {method} {path}: timeout") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"YooKassa {method} {path}: {type(exc).__name__}") from exc
        try:
            data = response.json()
        except ValueError:
            data = {"raw": response.text[:500]}
        if not isinstance(data, dict):
            data = {"raw": data}
        status = response.status_code
        if status >= 500 or status == 429:
            raise ProviderUnavailable(f"YooKassa {method} {path}: HTTP {status}", raw=data)
        if status in (401, 403):
            raise ProviderMisconfigured(f"YooKassa {method} {path}: HTTP {status} {data.get('code')}", raw=data)
        if status >= 400:
            raise ProviderRejected(
                f"YooKassa {method} {path}: HTTP {status} {data.get('code')}: {data.get('description')}", raw=data
            )
        if "raw" in data and len(data) == 1:
            raise ProviderUnavailable(f"YooKassa {method} {path}: response is not a JSON object", raw=data)
        return data

    @staticmethod
    def _payment(data: dict[str, Any]) -> ProviderPayment:
        try:
            amount = data["amount"]
            metadata = data.get("metadata") or {}
            return ProviderPayment(
                provider_payment_id=str(data["id"]),
                outcome=map_status(data),
                provider_status=data["status"],
                amount_kopecks=parse_rubles(amount["value"]),
                currency=amount["currency"],
                confirmation_url=(data.get("confirmation") or {}).get("confirmation_url"),
                reference=metadata.get("attempt_id"),
                order_id=metadata.get("order_id"),
                raw=data,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderUnavailable(f"YooKassa payment object malformed: {exc!r}", raw=data) from exc


class YooKassa:
    """The YooKassa provider (registry entry, ``providers.PROVIDERS["yookassa"]``): unsigned notifications
    confirmed by ``GET payments/{id}``; the webhook answers JSON."""

    name = "yookassa"
    label = "YooKassa"
    webhook_path = "/v1/yook-pay-webhook"
    fetch_label = "re-fetch"
    account_field = "shop_id"

    def connect(self, *, account_id: str, secret: str) -> YooKassaClient:
        return YooKassaClient(
            shared_client(),
            base_url=settings.YOOKASSA_API_URL,
            shop_id=account_id,
            secret_key=secret,
            **client_timeouts(),
        )

    def parse_notification(self, body: bytes) -> NotificationClaim:
        return parse_notification(body)

    def verify_notification(self, claim: NotificationClaim, *, secret: str) -> NotificationClaim:
        return claim  # no signature: the payment is re-fetched before anything moves

    def describe(self, claim: NotificationClaim, payment: ProviderPayment) -> tuple[str, bool]:
        disagree = bool(claim.status and claim.refund_id is None and claim.status != payment.provider_status)
        return claim.event, disagree

    def webhook_response(self, http_status: int, reason: str) -> HttpResponse:
        if http_status == 200:
            return JsonResponse({"status": "ok"})
        return JsonResponse({"error": reason}, status=http_status)
