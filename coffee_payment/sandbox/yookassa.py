"""YooKassa API v3 emulator: ``POST payments``, ``GET payments/{id}``, ``POST refunds``, ``GET refunds/{id}``.

Wire format: https://yookassa.ru/developers/api and docs/domain.md §3. Only the demo shop in :mod:`defaults` exists.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from coffee_payment.sandbox import defaults
from coffee_payment.sandbox.state import (
    ApiError,
    Notification,
    SandboxState,
    YooKassaPayment,
    api_endpoint,
    origin,
    utc_now_iso,
)

SERVICE = "yookassa"
WEBHOOK_PATH = "/v1/yook-pay-webhook"
FINAL_STATUSES = frozenset({"succeeded", "canceled"})
AMOUNT_VALUE = re.compile(r"^\d{1,10}\.\d{2}$")
DESCRIPTION_MAX = 128
# Decline reason the checkout's "decline" button produces (one of YooKassa's documented cancellation reasons).
DECLINE_DETAILS = {"party": "payment_network", "reason": "card_expired"}


class YooKassaError(ApiError):
    """An API error, rendered as YooKassa's ``{type: "error", id, code, description, parameter}``."""

    def __init__(self, status: int, code: str, description: str, parameter: str | None = None) -> None:
        super().__init__(description)
        self.status, self.code, self.description, self.parameter = status, code, description, parameter

    def response(self) -> JSONResponse:
        """The error as an HTTP response."""
        body: dict[str, Any] = {
            "type": "error",
            "id": str(uuid.uuid4()),
            "code": self.code,
            "description": self.description,
        }
        if self.parameter:
            body["parameter"] = self.parameter
        return JSONResponse(body, status_code=self.status)


def _invalid(description: str, parameter: str | None = None) -> YooKassaError:
    return YooKassaError(400, "invalid_request", description, parameter)


def _authenticate(request: Request) -> str:
    """Return the shop id of a valid HTTP Basic header, else raise a 401."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    try:
        shop_id, _, secret = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        shop_id = secret = ""
    if scheme.lower() != "basic" or (shop_id, secret) != (
        defaults.YOOKASSA_SHOP_ID,
        defaults.YOOKASSA_SECRET_KEY,
    ):
        raise YooKassaError(
            401,
            "invalid_credentials",
            "Login or password error. Use shopId as login and the secret key as password.",
        )
    return shop_id


def _fault_error(kind: str) -> YooKassaError:
    if kind == "500":
        return YooKassaError(500, "internal_server_error", "Sandbox fault: internal server error.")
    return _invalid("Sandbox fault: request rejected.")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _invalid("Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise _invalid("Request body must be a JSON object.")
    return body


def _idempotence_key(request: Request) -> str:
    key = request.headers.get("idempotence-key", "").strip()
    if not key or len(key) > 64:
        raise _invalid("Idempotence-Key header is missing or longer than 64 characters.", "Idempotence-Key")
    return key


def _idempotent(
    state: SandboxState, shop_id: str, resource: str, key: str, body: Any, create: Callable[[], str]
) -> str:
    """The id of the object created earlier with this key and body, else ``create()``'s new id, remembered under
    the key. The same key with another body is a 400 (YooKassa's idempotence rules)."""
    stored = state.idempotence.get((shop_id, resource, key))
    if stored is not None:
        stored_body, object_id = stored
        if stored_body != body:
            raise _invalid("Idempotence key duplicated: it was used with another request body.", "Idempotence-Key")
        return object_id
    object_id = create()
    state.idempotence[(shop_id, resource, key)] = (body, object_id)
    return object_id


async def _authenticated(request: Request) -> str:
    return _authenticate(request)


async def _authenticated_write(request: Request) -> tuple[str, str, dict[str, Any]]:
    """(shop id, Idempotence-Key, JSON body) of a POST, checked in YooKassa's order."""
    return _authenticate(request), _idempotence_key(request), await _json_body(request)


def _validate_amount(amount: Any, parameter: str = "amount") -> dict[str, str]:
    if not isinstance(amount, dict):
        raise _invalid("Amount is required.", parameter)
    value = amount.get("value")
    if not isinstance(value, str) or not AMOUNT_VALUE.match(value) or Decimal(value) <= 0:
        raise _invalid('amount.value must be a positive string with 2 decimals, e.g. "150.00".', f"{parameter}.value")
    if amount.get("currency") != "RUB":
        raise _invalid("Only RUB is supported by this shop.", f"{parameter}.currency")
    return {"value": value, "currency": "RUB"}


def kopecks(amount: dict[str, str]) -> int:
    """Integer kopecks of a YooKassa amount object."""
    return int(Decimal(amount["value"]) * 100)


def _validate_create(body: dict[str, Any]) -> None:
    _validate_amount(body.get("amount"))
    confirmation = body.get("confirmation")
    if not isinstance(confirmation, dict) or confirmation.get("type") != "redirect":
        raise _invalid('confirmation.type must be "redirect".', "confirmation.type")
    if not isinstance(confirmation.get("return_url"), str) or not confirmation["return_url"]:
        raise _invalid("confirmation.return_url is required for redirect.", "confirmation.return_url")
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > DESCRIPTION_MAX):
        raise _invalid(f"description must be a string of at most {DESCRIPTION_MAX} characters.", "description")
    if "metadata" in body and not isinstance(body["metadata"], dict):
        raise _invalid("metadata must be an object.", "metadata")
    if "capture" in body and not isinstance(body["capture"], bool):
        raise _invalid("capture must be a boolean.", "capture")


def _new_payment(request: Request, shop_id: str, body: dict[str, Any]) -> YooKassaPayment:
    payment_id = str(uuid.uuid4())
    obj: dict[str, Any] = {
        "id": payment_id,
        "status": "pending",
        "paid": False,
        "amount": _validate_amount(body["amount"]),
        "confirmation": {
            "type": "redirect",
            "confirmation_url": f"{origin(request)}/_sandbox/checkout/yookassa/{payment_id}",
        },
        "created_at": utc_now_iso(),
        "metadata": body.get("metadata") or {},
        "recipient": {"account_id": shop_id, "gateway_id": "100700"},
        "test": True,
        "refundable": False,
    }
    if body.get("description") is not None:
        obj["description"] = body["description"]
    return YooKassaPayment(shop_id=shop_id, obj=obj, return_url=body["confirmation"]["return_url"])


def _notification(state: SandboxState, event: str, obj: dict[str, Any], payment_id: str) -> Notification:
    return Notification(
        provider=SERVICE,
        url=state.config["webhook_base"].rstrip("/") + WEBHOOK_PATH,
        payload={"type": "notification", "event": event, "object": copy.deepcopy(obj)},
        label=event,
        payment_id=payment_id,
    )


def settle(state: SandboxState, payment: YooKassaPayment, pay: bool) -> list[Notification]:
    """Move a pending payment to ``succeeded`` (pay) or ``canceled``; return the notifications to send.

    With ``notifications.out_of_order`` a stale ``payment.waiting_for_capture`` copy follows the success.
    """
    obj = payment.obj
    if pay:
        obj.update(
            status="succeeded",
            paid=True,
            captured_at=utc_now_iso(),
            refundable=True,
            payment_method={
                "type": "bank_card",
                "id": obj["id"],
                "saved": False,
                "title": "Bank card *0777",
                "card": {
                    "first6": "430000",
                    "last4": "0777",
                    "expiry_month": "12",
                    "expiry_year": "2030",
                    "card_type": "Visa",
                },
            },
        )
        notes = [_notification(state, "payment.succeeded", obj, obj["id"])]
        if state.config["notifications"].get("out_of_order"):
            stale = {key: value for key, value in obj.items() if key != "captured_at"}
            stale.update(status="waiting_for_capture", refundable=False)
            notes.append(_notification(state, "payment.waiting_for_capture", stale, obj["id"]))
        return notes
    obj.update(status="canceled", paid=False, cancellation_details=dict(DECLINE_DETAILS))
    return [_notification(state, "payment.canceled", obj, obj["id"])]


def current_notifications(state: SandboxState, payment: YooKassaPayment) -> list[Notification]:
    """The notification for the payment's current status (empty while it is ``pending``: no such event)."""
    event = {
        "succeeded": "payment.succeeded",
        "canceled": "payment.canceled",
        "waiting_for_capture": "payment.waiting_for_capture",
    }.get(payment.obj["status"])
    return [_notification(state, event, payment.obj, payment.obj["id"])] if event else []


async def _auto_pay(state: SandboxState, payment_id: str) -> None:
    await asyncio.sleep(float(state.config["auto_pay_delay_ms"]) / 1000)
    payment = state.yookassa_payments.get(payment_id)
    if payment is not None and payment.obj["status"] not in FINAL_STATUSES:
        await state.deliver(settle(state, payment, pay=True))


async def create_payment(request: Request, state: SandboxState, write: tuple[str, str, dict[str, Any]]) -> Response:
    """``POST /v3/payments``."""
    shop_id, key, body = write

    def create() -> str:
        _validate_create(body)
        payment = _new_payment(request, shop_id, body)
        state.yookassa_payments[payment.obj["id"]] = payment
        if state.config["auto_pay"]:
            state.spawn(_auto_pay(state, payment.obj["id"]))
        return payment.obj["id"]

    payment_id = _idempotent(state, shop_id, "payments", key, body, create)
    return JSONResponse(state.yookassa_payments[payment_id].obj)


def _own_payment(state: SandboxState, shop_id: str, payment_id: str) -> YooKassaPayment:
    payment = state.yookassa_payments.get(payment_id)
    if payment is None or payment.shop_id != shop_id:
        raise YooKassaError(404, "not_found", f"Payment {payment_id} not found.", "payment_id")
    return payment


async def get_payment(request: Request, state: SandboxState, shop_id: str) -> Response:
    """``GET /v3/payments/{payment_id}``."""
    return JSONResponse(_own_payment(state, shop_id, request.path_params["payment_id"]).obj)


async def create_refund(request: Request, state: SandboxState, write: tuple[str, str, dict[str, Any]]) -> Response:
    """``POST /v3/refunds`` — always ``succeeded`` at once; notifies ``refund.succeeded``."""
    shop_id, key, body = write

    def create() -> str:
        if not isinstance(body.get("payment_id"), str):
            raise _invalid("payment_id is required.", "payment_id")
        payment = _own_payment(state, shop_id, body["payment_id"])
        amount = _validate_amount(body.get("amount"))
        if payment.obj["status"] != "succeeded":
            raise _invalid("Only a succeeded payment can be refunded.", "payment_id")
        refunded = kopecks(payment.obj.get("refunded_amount", {"value": "0.00"}))
        if refunded + kopecks(amount) > kopecks(payment.obj["amount"]):
            raise _invalid("Refund amount exceeds the payment's remaining amount.", "amount.value")
        refund = {
            "id": str(uuid.uuid4()),
            "payment_id": payment.obj["id"],
            "status": "succeeded",
            "amount": amount,
            "created_at": utc_now_iso(),
        }
        total = refunded + kopecks(amount)
        payment.obj["refunded_amount"] = {"value": f"{total // 100}.{total % 100:02d}", "currency": "RUB"}
        payment.obj["refundable"] = total < kopecks(payment.obj["amount"])
        state.yookassa_refunds[refund["id"]] = refund
        state.spawn(state.deliver([_notification(state, "refund.succeeded", refund, payment.obj["id"])]))
        return refund["id"]

    refund_id = _idempotent(state, shop_id, "refunds", key, body, create)
    return JSONResponse(state.yookassa_refunds[refund_id])


async def get_refund(request: Request, state: SandboxState, shop_id: str) -> Response:
    """``GET /v3/refunds/{refund_id}``."""
    refund = state.yookassa_refunds.get(request.path_params["refund_id"])
    if refund is None or state.yookassa_payments[refund["payment_id"]].shop_id != shop_id:
        raise YooKassaError(404, "not_found", "Refund not found.", "refund_id")
    return JSONResponse(refund)


def _endpoint(operation: str | None, prepare: Any, handler: Any, counter: str | None = None) -> Any:
    return api_endpoint(SERVICE, operation, prepare, handler, _fault_error, counter)


def routes() -> list[Route]:
    """Routes under :data:`defaults.YOOKASSA_PREFIX`."""
    prefix = defaults.YOOKASSA_PREFIX
    return [
        Route(
            f"{prefix}payments", _endpoint("yookassa.create", _authenticated_write, create_payment), methods=["POST"]
        ),
        Route(
            f"{prefix}payments/{{payment_id}}", _endpoint("yookassa.get", _authenticated, get_payment), methods=["GET"]
        ),
        Route(
            f"{prefix}refunds",
            _endpoint(None, _authenticated_write, create_refund, "yookassa.create_refund"),
            methods=["POST"],
        ),
        Route(
            f"{prefix}refunds/{{refund_id}}",
            _endpoint(None, _authenticated, get_refund, "yookassa.get_refund"),
            methods=["GET"],
        ),
    ]
