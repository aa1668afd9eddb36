"""TBank internet acquiring API v2 emulator: ``Init``, ``GetState``, ``CheckOrder``, ``Cancel``.

Wire format: https://www.tbank.ru/kassa/dev/payments/ and docs/domain.md §4. Errors are HTTP 200 with
``Success: false`` (no PaymentId/Status); only the demo terminal in :mod:`defaults` exists.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from coffee_payment.payments.providers.tbank_token import tbank_token, tbank_token_valid
from coffee_payment.sandbox import defaults
from coffee_payment.sandbox.state import (
    ApiError,
    Notification,
    SandboxState,
    TBankPayment,
    api_endpoint,
    origin,
)

SERVICE = "tbank"
WEBHOOK_PATH = "/v1/tbank-webhook"  # used when Init carries no NotificationURL (the terminal's default URL)
OPEN_STATUSES = frozenset({"NEW", "FORM_SHOWED"})
# Every status the real API reports (docs/domain.md §4 status map); the sandbox control may set any of them.
KNOWN_STATUSES = frozenset(
    {
        *OPEN_STATUSES,
        *("AUTHORIZING", "3DS_CHECKING", "3DS_CHECKED", "AUTHORIZED", "CONFIRMING", "CONFIRMED"),
        *("REJECTED", "AUTH_FAIL", "DEADLINE_EXPIRED", "ATTEMPTS_EXPIRED", "CANCELED", "REVERSED"),
        *("REFUNDED", "PARTIAL_REFUNDED"),
    }
)
ORDER_ID_MAX = 36
DESCRIPTION_MAX = 140
DECLINE_ERROR_CODE = "1051"  # "insufficient funds": what a declined card produces
CARD = {"CardId": 70000777, "Pan": "430000******0777", "ExpDate": "1230"}
NOTIFICATION_DATA = {"Source": "cards"}  # a nested object: must be left out of the Token


class TBankError(ApiError):
    """An API error: ``{Success: false, ErrorCode, Message, Details}``, HTTP 200 unless ``http_status``."""

    def __init__(self, code: str, message: str, details: str = "", http_status: int = 200) -> None:
        super().__init__(message)
        self.code, self.message, self.details, self.http_status = code, message, details, http_status

    def response(self) -> JSONResponse:
        """The error as an HTTP response."""
        body = {"Success": False, "ErrorCode": self.code, "Message": self.message, "Details": self.details}
        return JSONResponse(body, status_code=self.http_status)


def _bad_params(details: str) -> TBankError:
    return TBankError("9999", "Неверные параметры.", details)


async def _signed_body(request: Request) -> dict[str, Any]:
    """Parse the JSON body and check TerminalKey and Token (error 204 otherwise)."""
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _bad_params("Тело запроса не является JSON.") from None
    if not isinstance(body, dict):
        raise _bad_params("Тело запроса должно быть JSON-объектом.")
    if body.get("TerminalKey") != defaults.TBANK_TERMINAL_KEY or not tbank_token_valid(body, defaults.TBANK_PASSWORD):
        raise TBankError(
            "204",
            "Неверный токен. Проверьте пару TerminalKey и SecretKey.",
            "Токен не прошёл проверку или терминал не найден.",
        )
    return body


def _fault_error(kind: str) -> TBankError:
    if kind == "500":
        return TBankError("9999", "Внутренняя ошибка системы.", "Sandbox fault.", http_status=500)
    return TBankError("9999", "Внутренняя ошибка системы.", "Sandbox fault: rejected.")


def _payment(state: SandboxState, body: dict[str, Any]) -> TBankPayment:
    payment = state.tbank_payments.get(str(body.get("PaymentId", "")))
    if payment is None:
        raise TBankError("7", "Платёж не найден.", f"PaymentId {body.get('PaymentId')!r} не найден.")
    return payment


def _state_fields(payment: TBankPayment) -> dict[str, Any]:
    """The payment fields Init and GetState answer with."""
    return {
        "TerminalKey": payment.terminal_key,
        "Status": payment.status,
        "PaymentId": payment.payment_id,
        "OrderId": payment.order_id,
        "Amount": payment.amount,
    }


def _validate_init(body: dict[str, Any]) -> None:
    amount = body.get("Amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise _bad_params("Amount должен быть целым положительным числом копеек.")
    order_id = body.get("OrderId")
    if not isinstance(order_id, str) or not 0 < len(order_id) <= ORDER_ID_MAX:
        raise _bad_params(f"OrderId должен быть строкой длиной 1..{ORDER_ID_MAX}.")
    description = body.get("Description")
    if description is not None and (not isinstance(description, str) or len(description) > DESCRIPTION_MAX):
        raise _bad_params(f"Description длиннее {DESCRIPTION_MAX} символов.")
    for key in ("NotificationURL", "SuccessURL", "FailURL"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise _bad_params(f"{key} должен быть строкой.")


def _notification(state: SandboxState, payment: TBankPayment, status: str) -> Notification:
    rejected = status == "REJECTED"
    payload: dict[str, Any] = {
        "TerminalKey": payment.terminal_key,
        "OrderId": payment.order_id,
        "Success": not rejected,
        "Status": status,
        "PaymentId": int(payment.payment_id),  # a JSON number in notifications, a string in responses
        "ErrorCode": DECLINE_ERROR_CODE if rejected else "0",
        "Amount": payment.amount,
        **CARD,
        "Data": dict(NOTIFICATION_DATA),
    }
    payload["Token"] = tbank_token(payload, defaults.TBANK_PASSWORD)
    url = payment.notification_url or state.config["webhook_base"].rstrip("/") + WEBHOOK_PATH
    return Notification(SERVICE, url, payload, status, payment.payment_id)


def settle(state: SandboxState, payment: TBankPayment, pay: bool) -> list[Notification]:
    """Finish an open payment: pay → AUTHORIZED then CONFIRMED (one-stage), decline → REJECTED.

    Returns the notifications to send; ``notifications.out_of_order`` sends CONFIRMED before AUTHORIZED.
    """
    if not pay:
        payment.status = "REJECTED"
        return [_notification(state, payment, "REJECTED")]
    notes = [_notification(state, payment, "AUTHORIZED"), _notification(state, payment, "CONFIRMED")]
    payment.status = "CONFIRMED"
    if state.config["notifications"].get("out_of_order"):
        notes.reverse()
    return notes


def current_notifications(state: SandboxState, payment: TBankPayment) -> list[Notification]:
    """The notification for the payment's current status."""
    return [_notification(state, payment, payment.status)]


async def _auto_pay(state: SandboxState, payment_id: str) -> None:
    await asyncio.sleep(float(state.config["auto_pay_delay_ms"]) / 1000)
    payment = state.tbank_payments.get(payment_id)
    if payment is not None and payment.status in OPEN_STATUSES:
        await state.deliver(settle(state, payment, pay=True))


def _endpoint(
    operation: str | None,
    handler: Callable[[Request, SandboxState, dict[str, Any]], Awaitable[dict[str, Any]]],
    counter: str | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler`` (which returns the result fields) with latency, token check, faults, error rendering
    (:func:`~coffee_payment.sandbox.state.api_endpoint`) and TBank's ``Success``/``ErrorCode`` envelope."""

    async def answer(request: Request, state: SandboxState, body: dict[str, Any]) -> Response:
        result = await handler(request, state, body)
        return JSONResponse({"Success": True, "ErrorCode": "0", "Message": "OK", **result})

    answer.__doc__ = handler.__doc__
    return api_endpoint(SERVICE, operation, _signed_body, answer, _fault_error, counter)


async def init(request: Request, state: SandboxState, body: dict[str, Any]) -> dict[str, Any]:
    """``Init``: create a payment in status NEW and return its PaymentURL (the sandbox checkout page)."""
    _validate_init(body)
    if any(p.order_id == body["OrderId"] for p in state.tbank_payments.values()):
        raise TBankError("8", "Заказ с таким OrderId уже существует.", f"OrderId {body['OrderId']} уже использован.")
    payment = TBankPayment(
        payment_id=state.next_tbank_payment_id(),
        terminal_key=body["TerminalKey"],
        order_id=body["OrderId"],
        amount=body["Amount"],
        description=body.get("Description") or "",
        status="NEW",
        notification_url=body.get("NotificationURL"),
        success_url=body.get("SuccessURL"),
        fail_url=body.get("FailURL"),
    )
    state.tbank_payments[payment.payment_id] = payment
    if state.config["auto_pay"]:
        state.spawn(_auto_pay(state, payment.payment_id))
    return {**_state_fields(payment), "PaymentURL": f"{origin(request)}/_sandbox/checkout/tbank/{payment.payment_id}"}


async def get_state(request: Request, state: SandboxState, body: dict[str, Any]) -> dict[str, Any]:
    """``GetState``: the payment's current status."""
    return _state_fields(_payment(state, body))


async def check_order(request: Request, state: SandboxState, body: dict[str, Any]) -> dict[str, Any]:
    """``CheckOrder``: every payment made for an OrderId (empty list when there is none)."""
    order_id = body.get("OrderId")
    if not isinstance(order_id, str) or not order_id:
        raise _bad_params("OrderId обязателен.")
    payments = [
        {
            "PaymentId": p.payment_id,
            "Amount": p.amount,
            "Status": p.status,
            "Success": p.status != "REJECTED",
            "ErrorCode": DECLINE_ERROR_CODE if p.status == "REJECTED" else "0",
        }
        for p in state.tbank_payments.values()
        if p.order_id == order_id
    ]
    return {"TerminalKey": body["TerminalKey"], "OrderId": order_id, "Payments": payments}


async def cancel(request: Request, state: SandboxState, body: dict[str, Any]) -> dict[str, Any]:
    """``Cancel``: NEW → CANCELED, AUTHORIZED → REVERSED, CONFIRMED → REFUNDED (full amount), then notify."""
    payment = _payment(state, body)
    new_status = {
        "NEW": "CANCELED",
        "FORM_SHOWED": "CANCELED",
        "AUTHORIZED": "REVERSED",
        "CONFIRMED": "REFUNDED",
    }
    if payment.status not in new_status:
        raise TBankError("9999", "Неверный статус транзакции.", f"Платёж в статусе {payment.status}.")
    payment.status = new_status[payment.status]
    state.spawn(state.deliver(current_notifications(state, payment)))
    return {
        "TerminalKey": payment.terminal_key,
        "Status": payment.status,
        "PaymentId": payment.payment_id,
        "OrderId": payment.order_id,
        "OriginalAmount": payment.amount,
        "NewAmount": 0,
    }


def routes() -> list[Route]:
    """Routes under :data:`defaults.TBANK_PREFIX`."""
    prefix = defaults.TBANK_PREFIX
    return [
        Route(f"{prefix}Init", _endpoint("tbank.init", init), methods=["POST"]),
        Route(f"{prefix}GetState", _endpoint("tbank.get_state", get_state), methods=["POST"]),
        Route(f"{prefix}CheckOrder", _endpoint("tbank.check_order", check_order), methods=["POST"]),
        Route(f"{prefix}Cancel", _endpoint(None, cancel, "tbank.cancel"), methods=["POST"]),
    ]
