"""Provider webhooks: ``POST /v1/yook-pay-webhook`` and ``POST /v1/tbank-webhook``."""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from coffee_payment.devices.models import PaymentScenario
from coffee_payment.monitoring.metrics import record_notification
from coffee_payment.payments.models import NotificationVerdict
from coffee_payment.payments.notifications import (
    MAX_BODY_BYTES,
    Verdict,
    notification_record,
    notification_store,
    tbank_process,
    yookassa_process,
)

logger = logging.getLogger(__name__)

_KEPT_HEADERS = ("content-type", "user-agent", "x-forwarded-for", "x-real-ip", "content-length")


async def _handle(request: HttpRequest, provider: str, process) -> Verdict:
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        return Verdict(NotificationVerdict.REJECTED, 413, "body too large")
    headers = {k: v for k, v in request.headers.items() if k.lower() in _KEPT_HEADERS}
    try:
        notification_id = await sync_to_async(notification_store)(
            provider=provider, body=body, headers=headers, remote_addr=request.META.get("REMOTE_ADDR") or None
        )
    except DatabaseError:
        logger.exception("%s notification could not be stored; asking the provider to retry", provider)
        return Verdict(NotificationVerdict.RETRY, 503, "storage unavailable")
    try:
        verdict, attempt_id = await process(body)
    except DatabaseError:
        logger.exception("%s notification %s failed on the database; provider will retry", provider, notification_id)
        verdict, attempt_id = Verdict(NotificationVerdict.RETRY, 503, "database error"), None
    log = logger.warning if verdict.http_status >= 400 else logger.info
    log("%s notification %s: %s (%s)", provider, notification_id, verdict.verdict, verdict.detail)
    record_notification(provider, verdict.verdict)
    try:
        await sync_to_async(notification_record)(notification_id, verdict, attempt_id)
    except DatabaseError:
        logger.exception("could not record the verdict of notification %s", notification_id)
    return verdict


def _public_reason(verdict: Verdict) -> str:
    """What the caller sees: the reason for a 4xx; for our own failures only that it is temporary (details are on
    the stored notification and in the log)."""
    return verdict.detail if verdict.http_status < 500 else "temporarily unavailable, retry later"


@csrf_exempt
@require_POST
async def yookassa_webhook(request: HttpRequest) -> HttpResponse:
    """YooKassa notification. 200 for processed, duplicate, stale or unknown; 400 malformed; 503 retry later."""
    verdict = await _handle(request, PaymentScenario.YOOKASSA, yookassa_process)
    if verdict.http_status == 200:
        return JsonResponse({"status": "ok"})
    return JsonResponse({"error": _public_reason(verdict)}, status=verdict.http_status)


@csrf_exempt
@require_POST
async def tbank_webhook(request: HttpRequest) -> HttpResponse:
    """TBank notification: answer HTTP 200 with body exactly ``OK`` (duplicates too), else TBank retries."""
    verdict = await _handle(request, PaymentScenario.TBANK, tbank_process)
    if verdict.http_status == 200:
        return HttpResponse("OK", content_type="text/plain")
    return HttpResponse(_public_reason(verdict), status=verdict.http_status, content_type="text/plain")
