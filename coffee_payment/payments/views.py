"""Provider webhooks: ``POST`` at each registered provider's ``webhook_path`` (``/v1/yook-pay-webhook``,
``/v1/tbank-webhook``)."""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from coffee_payment.httpmethods import require_methods
from coffee_payment.payments.inbox import inbox_admit
from coffee_payment.payments.models import NotificationVerdict
from coffee_payment.payments.notifications import Verdict, notification_process
from coffee_payment.payments.providers import get_provider
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
    return await notification_process(provider, admission.notification_id, body, admitted=admission.admitted), None


def _public_reason(verdict: Verdict) -> str:
    """What the caller sees: the reason for a 4xx; for our own failures only that it is temporary (details are on
    the stored notification and in the log)."""
    return verdict.detail if verdict.http_status < 500 else "temporarily unavailable, retry later"


@csrf_exempt
@require_methods("POST")
async def webhook(request: HttpRequest, provider: str) -> HttpResponse:
    """A notification of ``provider`` (routed from ``PaymentProvider.webhook_path``), answered in its format
    (``webhook_response``: YooKassa JSON, TBank body exactly ``OK`` — else TBank retries, duplicates too).
    200 for processed, duplicate, stale or unknown; 400 malformed or forged; 413 too large; 415 not JSON; 429 too
    many from this address (``Retry-After``); 503 retry later."""
    verdict, retry_after_s = await _handle(request, provider)
    response = get_provider(provider).webhook_response(verdict.http_status, _public_reason(verdict))
    if verdict.http_status != 200 and retry_after_s is not None:
        response["Retry-After"] = str(retry_after_s)
    return response
