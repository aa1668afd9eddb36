"""Control endpoints under ``/_sandbox/`` for tests and operators, plus ``GET /health``."""

from __future__ import annotations

import json
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from coffee_payment.sandbox import tbank, yookassa
from coffee_payment.sandbox.config import ConfigError, merge_config
from coffee_payment.sandbox.state import sandbox_state


async def get_config(request: Request) -> Response:
    """``GET /_sandbox/config``: the current configuration."""
    return JSONResponse(sandbox_state(request).config)


async def update_config(request: Request) -> Response:
    """``POST /_sandbox/config``: merge the given keys; 400 ``{"error"}`` on an invalid value."""
    state = sandbox_state(request)
    try:
        update = json.loads(await request.body())
        state.config = merge_config(state.config, update)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
    except ConfigError as error:
        return JSONResponse({"error": str(error)}, status_code=400)
    return JSONResponse(state.config)


async def reset(request: Request) -> Response:
    """``POST /_sandbox/reset``: clear payments, makes and deliveries; restore the start-up config."""
    sandbox_state(request).reset()
    return JSONResponse({"status": "reset"})


async def makes(request: Request) -> Response:
    """``GET /_sandbox/tmetr/makes``: make commands received, oldest first, each with ``received_at``."""
    return JSONResponse(sandbox_state(request).makes)


async def make_attempts(request: Request) -> Response:
    """``GET /_sandbox/tmetr/make-attempts``: every make request with ``arrived_at`` (before latency), then
    ``answered_at`` and ``http_status`` (null while it is still being answered), and its ``body``."""
    return JSONResponse(sandbox_state(request).make_attempts)


async def release_notifications(request: Request) -> Response:
    """``POST /_sandbox/notifications/release`` ``{"order": "oldest_first" | "newest_first"}``: deliver the
    notifications held while ``notifications.hold`` was on, one at a time in that order; returns the records."""
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    order = body.get("order", "oldest_first") if isinstance(body, dict) else None
    if order not in ("oldest_first", "newest_first"):
        return JSONResponse({"error": "order must be oldest_first or newest_first"}, status_code=400)
    return JSONResponse(await sandbox_state(request).release(reverse=order == "newest_first"))


async def api_calls(request: Request) -> Response:
    """``GET /_sandbox/api-calls``: API requests received per operation since the last reset, e.g.
    ``{"yookassa.get": 3, "tbank.get_state": 1}`` (to count provider calls the server made)."""
    return JSONResponse(sandbox_state(request).api_calls)


async def deliveries(request: Request) -> Response:
    """``GET /_sandbox/deliveries``: notification deliveries, oldest first."""
    return JSONResponse(sandbox_state(request).deliveries)


async def calls(request: Request) -> Response:
    """``GET /_sandbox/calls[?request_id=ID]``: calls to the emulated APIs, oldest first, each with the caller's
    ``X-Request-ID``."""
    recorded = sandbox_state(request).calls
    wanted = request.query_params.get("request_id")
    return JSONResponse([c for c in recorded if wanted is None or c["request_id"] == wanted])


async def payments(request: Request) -> Response:
    """``GET /_sandbox/payments``: ``{"yookassa": [payment objects], "tbank": [payments]}``."""
    state = sandbox_state(request)
    return JSONResponse(
        {
            "yookassa": [p.obj for p in state.yookassa_payments.values()],
            "tbank": [asdict(p) for p in state.tbank_payments.values()],
        }
    )


async def notify(request: Request) -> Response:
    """``POST /_sandbox/payments/{provider}/{payment_id}/notify``: re-send the current-status notification.

    Waits for the delivery and returns its records (404 unknown payment, 409 when the status has no event).
    """
    state = sandbox_state(request)
    provider, payment_id = request.path_params["provider"], request.path_params["payment_id"]
    if provider == "yookassa" and payment_id in state.yookassa_payments:
        notes = yookassa.current_notifications(state, state.yookassa_payments[payment_id])
    elif provider == "tbank" and payment_id in state.tbank_payments:
        notes = tbank.current_notifications(state, state.tbank_payments[payment_id])
    else:
        return JSONResponse({"error": f"unknown {provider} payment {payment_id}"}, status_code=404)
    if not notes:
        return JSONResponse({"error": "no notification exists for the current status"}, status_code=409)
    return JSONResponse(await state.deliver(notes))


async def set_tbank_status(request: Request) -> Response:
    """``POST /_sandbox/payments/tbank/{payment_id}/status`` ``{"status": "AUTHORIZED", "notify": false}``: put a
    TBank payment in any status, as if the bank had moved it (GetState answers it); ``notify`` sends (or holds)
    its notification."""
    state = sandbox_state(request)
    payment = state.tbank_payments.get(request.path_params["payment_id"])
    if payment is None:
        return JSONResponse({"error": "unknown tbank payment"}, status_code=404)
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or body.get("status") not in tbank.KNOWN_STATUSES:
        return JSONResponse({"error": f"status must be one of {sorted(tbank.KNOWN_STATUSES)}"}, status_code=400)
    payment.status = body["status"]
    records = await state.deliver(tbank.current_notifications(state, payment)) if body.get("notify") else []
    return JSONResponse({"status": payment.status, "deliveries": records})


async def set_yookassa_metadata(request: Request) -> Response:
    """``POST /_sandbox/payments/yookassa/{payment_id}/metadata`` ``{...}``: replace a payment's ``metadata``, as
    for a payment created by another system or before a migration (e.g. ``{}``: no attempt id)."""
    payment = sandbox_state(request).yookassa_payments.get(request.path_params["payment_id"])
    if payment is None:
        return JSONResponse({"error": "unknown yookassa payment"}, status_code=404)
    try:
        metadata = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        metadata = None
    if not isinstance(metadata, dict):
        return JSONResponse({"error": "body must be a JSON object (the new metadata)"}, status_code=400)
    payment.obj["metadata"] = metadata
    return JSONResponse(payment.obj)


async def health(request: Request) -> Response:
    """``GET /health``."""
    return PlainTextResponse("ok")


def routes() -> list[Route]:
    """The control routes."""
    return [
        Route("/_sandbox/config", get_config, methods=["GET"]),
        Route("/_sandbox/config", update_config, methods=["POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/tmetr/makes", makes, methods=["GET"]),
        Route("/_sandbox/tmetr/make-attempts", make_attempts, methods=["GET"]),
        Route("/_sandbox/notifications/release", release_notifications, methods=["POST"]),
        Route("/_sandbox/deliveries", deliveries, methods=["GET"]),
        Route("/_sandbox/calls", calls, methods=["GET"]),
        Route("/_sandbox/api-calls", api_calls, methods=["GET"]),
        Route("/_sandbox/payments", payments, methods=["GET"]),
        Route("/_sandbox/payments/{provider}/{payment_id}/notify", notify, methods=["POST"]),
        Route("/_sandbox/payments/tbank/{payment_id}/status", set_tbank_status, methods=["POST"]),
        Route("/_sandbox/payments/yookassa/{payment_id}/metadata", set_yookassa_metadata, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
