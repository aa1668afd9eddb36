"""Tmetr telemetry emulator: drink price, recent heartbeat and the make command (docs/domain.md §2).

Tmetr has no public docs; the shapes follow the contract the previous service used. Every call needs
``Authorization: Bearer <defaults.TMETR_TOKEN>``; errors are ``{errorCode, errorId, errorMessage}``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from coffee_payment.sandbox import defaults
from coffee_payment.sandbox.config import DRINK_SIZES, price_for
from coffee_payment.sandbox.state import ApiError, SandboxState, api_endpoint, sandbox_state, utc_now_iso

SERVICE = "tmetr"
OFFLINE_AGE_SECONDS = 2 * 60 * 60
MAKE_FIELDS = ("deviceId", "orderUuid", "drinkUuid", "size", "price")


class TmetrError(ApiError):
    """An API error rendered as ``{errorCode, errorId, errorMessage}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        """The error as an HTTP response."""
        body = {"errorCode": self.code, "errorId": str(uuid.uuid4()), "errorMessage": self.message}
        return JSONResponse(body, status_code=self.status)


def _bad_request(message: str) -> TmetrError:
    return TmetrError(400, "BAD_REQUEST", message)


async def _authorized_body(request: Request) -> Any:
    if request.headers.get("authorization", "") != f"Bearer {defaults.TMETR_TOKEN}":
        raise TmetrError(401, "UNAUTHORIZED", "Full authentication is required: token missing or expired.")
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _bad_request("Request body is not valid JSON.") from None


def _fault_error(kind: str) -> TmetrError:
    if kind == "500":
        return TmetrError(500, "INTERNAL_SERVER_ERROR", "Sandbox fault: internal server error.")
    return TmetrError(400, "REJECTED", "Sandbox fault: request rejected.")


def _require_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise _bad_request(f"{key} is required.")
    return str(value)


async def drink_price(request: Request, state: SandboxState, body: Any) -> Response:
    """``POST api/ui/v1/static/drink``: ``{deviceId, drinkIdAtDevice, drinkSize}`` → drink with ``price``."""
    if not isinstance(body, dict):
        raise _bad_request("Request body must be a JSON object.")
    device_id = _require_str(body, "deviceId")
    drink_id = _require_str(body, "drinkIdAtDevice")
    size = body.get("drinkSize")
    if size not in DRINK_SIZES:
        raise _bad_request(f"drinkSize must be one of {', '.join(DRINK_SIZES)}.")
    price, name = price_for(state.config, device_id, drink_id, size)
    result: dict[str, Any] = {
        "deviceId": body["deviceId"],
        "drinkIdAtDevice": body["drinkIdAtDevice"],
        "drinkSize": size,
        "name": name or f"Drink {drink_id}",
    }
    if price is not None:  # a price configured as null is left out, to test "price missing"
        result["price"] = price
    return JSONResponse(result)


async def heartbeat_recent(request: Request, state: SandboxState, body: Any) -> Response:
    """``POST api/ui/v1/stat/heartbeat/recent``: latest heartbeat (epoch seconds) of each requested device."""
    if not isinstance(body, dict) or not isinstance(body.get("deviceIds"), list):
        raise _bad_request("deviceIds (a list) is required.")
    offset, limit = body.get("offset", 0), body.get("limit", 20)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (offset, limit)):
        raise _bad_request("offset and limit must be non-negative integers.")
    now = int(time.time())
    offline = set(state.config["offline_devices"])
    content = [
        {
            "deviceId": device_id,
            "deviceIotName": f"iot-{device_id}",
            "heartbeatCreatedAt": now - OFFLINE_AGE_SECONDS if str(device_id) in offline else now,
        }
        for device_id in body["deviceIds"]
    ]
    return JSONResponse(
        {
            "content": content[offset : offset + limit],
            "totalElements": len(content),
            "offset": offset,
            "limit": limit,
        }
    )


async def make_command(request: Request, state: SandboxState, body: Any) -> Response:
    """``POST api/commander/v1/command/make``: a JSON array of commands; each is recorded in ``state.makes``."""
    if not isinstance(body, list) or not body:
        raise _bad_request("Body must be a non-empty JSON array of commands.")
    for index, command in enumerate(body):
        if not isinstance(command, dict):
            raise _bad_request(f"[{index}] must be an object.")
        missing = [key for key in MAKE_FIELDS if command.get(key) in (None, "")]
        if missing:
            raise _bad_request(f"[{index}] is missing {', '.join(missing)}.")
    received_at = utc_now_iso()
    state.makes.extend({**command, "received_at": received_at} for command in body)
    return JSONResponse({"status": "accepted"})


def _endpoint(operation: str, handler: Any) -> Any:
    return api_endpoint(SERVICE, operation, _authorized_body, handler, _fault_error)


def _recording_arrivals(endpoint: Any) -> Any:
    """Record every make request at arrival (before latency and faults), then when and how it was answered, so a
    test sees a make attempt even when the caller hung up or the sandbox answered with a fault."""

    async def recorded(request: Request) -> Response:
        attempt: dict[str, Any] = {"arrived_at": utc_now_iso(), "answered_at": None, "http_status": None}
        try:
            attempt["body"] = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            attempt["body"] = None
        sandbox_state(request).make_attempts.append(attempt)
        response = await endpoint(request)
        attempt.update(answered_at=utc_now_iso(), http_status=response.status_code)
        return response

    recorded.__doc__ = endpoint.__doc__
    return recorded


def routes() -> list[Route]:
    """Routes under :data:`defaults.TMETR_PREFIX`."""
    prefix = defaults.TMETR_PREFIX
    return [
        Route(f"{prefix}api/ui/v1/static/drink", _endpoint("tmetr.price", drink_price), methods=["POST"]),
        Route(
            f"{prefix}api/ui/v1/stat/heartbeat/recent",
            _endpoint("tmetr.heartbeat", heartbeat_recent),
            methods=["POST"],
        ),
        Route(
            f"{prefix}api/commander/v1/command/make",
            _recording_arrivals(_endpoint("tmetr.make", make_command)),
            methods=["POST"],
        ),
    ]
