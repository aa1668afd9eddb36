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
        Route("/_sandbox/deliveries", deliveries, methods=["GET"]),
        Route("/_sandbox/calls", calls, methods=["GET"]),
        Route("/_sandbox/payments", payments, methods=["GET"]),
        Route("/_sandbox/payments/{provider}/{payment_id}/notify", notify, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
