"""Provider webhooks: ``POST /v1/yook-pay-webhook`` and ``POST /v1/tbank-webhook``."""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from coffee_payment.devices.models import PaymentScenario
from coffee_payment.payments.models import NotificationVerdict
from coffee_payment.payments.notifications import (
    MAX_BODY_BYTES,
    Verdict,
    notification_process,
    notification_store,
)
from coffee_payment.serving.client_address import client_ip

logger = logging.getLogger(__name__)

_KEPT_HEADERS = ("content-type", "user-agent", "x-forwarded-for", "x-real-ip", "content-length")


async def _handle(request: HttpRequest, provider: str) -> Verdict:
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        return Verdict(NotificationVerdict.REJECTED, 413, "body too large")
    headers = {k: v for k, v in request.headers.items() if k.lower() in _KEPT_HEADERS}
    try:
        notification_id = await sync_to_async(notification_store)(
            provider=provider, body=body, headers=headers, remote_addr=client_ip(request)
        )
    except DatabaseError:
        logger.exception("%s notification could not be stored; asking the provider to retry", provider)
        return Verdict(NotificationVerdict.RETRY, 503, "storage unavailable")
    return await notification_process(provider, notification_id, body)


def _public_reason(verdict: Verdict) -> str:
    """What the caller sees: the reason for a 4xx; for our own failures only that it is temporary (details are on
    the stored notification and in the log)."""
    return verdict.detail if verdict.http_status < 500 else "temporarily unavailable, retry later"


@csrf_exempt
@require_POST
async def yookassa_webhook(request: HttpRequest) -> HttpResponse:
    """YooKassa notification. 200 for processed, duplicate, stale or unknown; 400 malformed; 503 retry later."""
    verdict = await _handle(request, PaymentScenario.YOOKASSA)
    if verdict.http_status == 200:
        return JsonResponse({"status": "ok"})
    return JsonResponse({"error": _public_reason(verdict)}, status=verdict.http_status)


@csrf_exempt
@require_POST
async def tbank_webhook(request: HttpRequest) -> HttpResponse:
    """TBank notification: answer HTTP 200 with body exactly ``OK`` (duplicates too), else TBank retries."""
    verdict = await _handle(request, PaymentScenario.TBANK)
    if verdict.http_status == 200:
        return HttpResponse("OK", content_type="text/plain")
    return HttpResponse(_public_reason(verdict), status=verdict.http_status, content_type="text/plain")
