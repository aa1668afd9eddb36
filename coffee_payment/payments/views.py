"""Provider webhooks: ``POST /v1/yook-pay-webhook`` and ``POST /v1/tbank-webhook``."""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from coffee_payment.devices.models import PaymentScenario
from coffee_payment.payments.inbox import inbox_admit
from coffee_payment.payments.models import NotificationVerdict
from coffee_payment.payments.notifications import Verdict, notification_process
from coffee_payment.serving.client_address import client_ip

logger = logging.getLogger(__name__)

_KEPT_HEADERS = ("content-type", "user-agent", "x-forwarded-for", "x-real-ip", "content-length")


async def _handle(request: HttpRequest, provider: str) -> tuple[Verdict, int | None]:
    """Admit (rate limit, cheap checks, store: payments/inbox.py), then process. Returns the verdict and, for a
    429, the seconds until the client may retry."""
    body = request.body
    headers = {k: v for k, v in request.headers.items() if k.lower() in _KEPT_HEADERS}
    try:
        admission = await sync_to_async(inbox_admit)(
            provider=provider,
            body=body,
            content_type=request.content_type or "",
            headers=headers,
            remote_addr=client_ip(request),
        )
    except DatabaseError:
        logger.exception("%s notification could not be stored; asking the provider to retry", provider)
        return Verdict(NotificationVerdict.RETRY, 503, "storage unavailable"), None
    refusal = admission.refusal
    if refusal is not None:
        logger.warning("%s notification %s refused: %s", provider, admission.notification_id, refusal.detail)
        return Verdict(refusal.verdict, refusal.http_status, refusal.detail), refusal.retry_after_s
    assert admission.notification_id is not None
    return await notification_process(provider, admission.notification_id, body), None


def _with_retry_after(response: HttpResponse, retry_after_s: int | None) -> HttpResponse:
    if retry_after_s is not None:
        response["Retry-After"] = str(retry_after_s)
    return response


def _public_reason(verdict: Verdict) -> str:
    """What the caller sees: the reason for a 4xx; for our own failures only that it is temporary (details are on
    the stored notification and in the log)."""
    return verdict.detail if verdict.http_status < 500 else "temporarily unavailable, retry later"


@csrf_exempt
@require_POST
async def yookassa_webhook(request: HttpRequest) -> HttpResponse:
    """YooKassa notification. 200 for processed, duplicate, stale or unknown; 400 malformed; 413 too large; 415 not
    JSON; 429 too many from this address (``Retry-After``); 503 retry later."""
    verdict, retry_after_s = await _handle(request, PaymentScenario.YOOKASSA)
    if verdict.http_status == 200:
        return JsonResponse({"status": "ok"})
    response = JsonResponse({"error": _public_reason(verdict)}, status=verdict.http_status)
    return _with_retry_after(response, retry_after_s)


@csrf_exempt
@require_POST
async def tbank_webhook(request: HttpRequest) -> HttpResponse:
    """TBank notification: answer HTTP 200 with body exactly ``OK`` (duplicates too), else TBank retries."""
    verdict, retry_after_s = await _handle(request, PaymentScenario.TBANK)
    if verdict.http_status == 200:
        return HttpResponse("OK", content_type="text/plain")
    response = HttpResponse(_public_reason(verdict), status=verdict.http_status, content_type="text/plain")
    return _with_retry_after(response, retry_after_s)
