"""Customer endpoints: QR scan, status page, status JSON, initiate payment (docs/domain.md §1)."""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from coffee_payment.dbsteps import run_read
from coffee_payment.errors import ServiceError
from coffee_payment.httpmethods import require_methods
from coffee_payment.jsonbody import BadJson, parse_json
from coffee_payment.orders.display import order_is_expired
from coffee_payment.orders.polling import STATUS_POLL_INTERVAL_MS
from coffee_payment.orders.qr import QrError, parse_qr
from coffee_payment.orders.selectors import order_find, order_status_json, status_body, status_row
from coffee_payment.orders.services import order_get_or_create
from coffee_payment.payments.ratelimit import rate_hit
from coffee_payment.payments.services import payment_initiate, payment_refresh_if_stale
from coffee_payment.serving.client_address import client_ip

logger = logging.getLogger(__name__)


def _error_page(request: HttpRequest, message: str, status: int, *, title: str = "", hint: str = "") -> HttpResponse:
    """The customer's error page (in the request's language): ``title``, ``message`` and what to do next."""
    context = {"title": title or _("Sorry"), "message": message, "hint": hint or _DEFAULT_HINT}
    return render(request, "orders/error.html", context, status=status)


_DEFAULT_HINT = gettext_lazy("Please scan the QR code on the machine again, or call the help line of the venue.")


# An order's pages and JSON change with its status and carry its id (the capability): no cache, shared or private,
# may keep them (never_cache: Cache-Control no-store, private, max-age=0), nor the redirect that names the id.
@never_cache
@csrf_exempt  # GET-only: let require_methods answer other methods with 405 (CSRF would say 403 first)
@require_methods("GET")
async def pay(request: HttpRequest) -> HttpResponse:
    """``GET /v1/pay?deviceUuid=&drinkNo=&drinkName=&size=&uuid=[&ts=&random=&salt=]`` (also the legacy
    ``/v1/yook-pay`` and ``/v1/tbank-pay``): validate, get-or-create the order keyed by ``uuid``, redirect (302)
    to the status page. Errors are HTML pages: 400 bad, repeated or ambiguous parameters or uuid reused, 404
    unknown device, 409 device offline, 410 the order of this code expired (never revived), 502 price
    unavailable."""
    try:
        qr = parse_qr(request.GET)
    except QrError as exc:
        message = _("This QR link is not valid: %(problem)s.") % {"problem": exc}
        return await sync_to_async(_error_page)(request, message, 400)
    try:
        order = await order_get_or_create(qr=qr)
    except ServiceError as exc:
        return await sync_to_async(_error_page)(request, exc.message, exc.http_status)
    if order_is_expired(order.status, order.expires_at, timezone.now()):
        return await sync_to_async(_error_page)(
            request,
            _("This order has expired."),
            410,
            title=_("Order expired"),
            hint=_("Please order again at the machine: it will show a new QR code."),
        )
    return HttpResponseRedirect(f"{reverse('order-status-page')}?order_id={order.id}")


@never_cache  # see pay()
@csrf_exempt  # GET-only, see pay()
@require_methods("GET")
def order_status_page(request: HttpRequest) -> HttpResponse:
    """The mobile status page (also the providers' return URL). It polls the JSON and shows the Pay button."""
    order = order_find(request.GET.get("order_id", ""))
    if order is None:
        return _error_page(request, _("Order not found."), 404)
    context = {
        "order": order,
        "initial": order_status_json(order),
        "page_text": _page_messages(),
        "poll_interval_ms": STATUS_POLL_INTERVAL_MS,
    }
    return render(request, "orders/status.html", context)


def _page_messages() -> dict[str, str]:
    """Texts the page's script shows, in the request's language (initiate-payment errors by HTTP status)."""
    return {
        "pay": str(_("Pay")),
        "pay_again": str(_("Pay again")),
        "starting": str(_("Opening the payment page…")),
        "409": str(_("This order can no longer be paid.")),
        "503": str(_("The payment service is not answering. Please try again.")),
        "429": str(_("Too many payment attempts right now. Please wait a few minutes and try again.")),
        "502": str(_("The payment could not be started. Please try again or call the help line.")),
        "error": str(_("The payment could not be started. Please try again.")),
        "offline": str(_("No connection. Please try again.")),
    }


@never_cache  # see pay()
@csrf_exempt  # GET-only, see pay()
@require_methods("GET")
async def order_status(request: HttpRequest, order_id: str) -> JsonResponse:
    """``GET /v1/order-status/<order_id>``: the status JSON. For a ``pending`` order whose notification is overdue
    it first polls the provider (rate-limited across workers)."""
    # One query on the hottest path, off the request's thread: a poll that needs no provider refresh never uses
    # that thread, so the lean handler sends the request signals inline (serving/lean.py, dbsteps.run_read).
    row = await run_read(status_row, order_id)
    if row is None:
        return JsonResponse({"error": "order not found"}, status=404)
    # refresh_due: only then can payment_refresh_if_stale claim a provider poll (its compare-and-set decides).
    if row.refresh_due and await payment_refresh_if_stale(order_id=row.order_id):
        # The poll may have moved the order. Re-read on the request's thread: the refresh left its pooled connection
        # there (until request_finished), and run_read would need a second one (tests/unit/test_status_read.py).
        row = await sync_to_async(status_row)(order_id)
        if row is None:
            return JsonResponse({"error": "order not found"}, status=404)
    body = status_body(row)
    body["server_time"] = timezone.now().isoformat()
    return JsonResponse(body)


@csrf_exempt  # JSON API called by the status page; the order id (a random UUID) is the capability
@require_methods("POST")
async def initiate_payment(request: HttpRequest) -> JsonResponse:
    """``POST /v1/initiate-payment`` ``{"order_id": str, "email"?: str}`` → ``{"redirect_url": str}``.
    400 bad body; 404 unknown order; 409 not payable or expired; 429 too many requests from this address
    (``RATE_LIMIT_INITIATE_PER_MINUTE``, with ``Retry-After``) or too many open payments on the machine
    (``DEVICE_OPEN_PAYMENTS_MAX``); 415 not ``application/json``; 502/503 provider trouble (with a reason)."""
    # First and cheap: a form or text/plain POST is what another site's page can send without a CORS preflight
    # (each one would also count against the rate limit of the customer's address); the page sends JSON.
    if (request.content_type or "").lower() != "application/json":
        return JsonResponse(
            {"error": f"content type must be application/json, not {request.content_type or ''!r}"}, status=415
        )
    limit = await sync_to_async(rate_hit)(
        scope="initiate", client=client_ip(request), limit=settings.RATE_LIMIT_INITIATE_PER_MINUTE
    )
    if not limit.allowed:
        response = JsonResponse({"error": "too many requests from this address; try again later"}, status=429)
        response["Retry-After"] = str(limit.retry_after_s)
        return response
    try:
        data = parse_json(request.body)
    except BadJson as exc:
        return JsonResponse({"error": f"body must be JSON: {exc}"}, status=400)
    if not isinstance(data, dict) or not isinstance(data.get("order_id"), str):
        return JsonResponse({"error": "order_id (string) is required"}, status=400)
    email = data.get("email")
    if email is not None:
        try:
            if not isinstance(email, str):
                raise ValidationError("not a string")
            validate_email(email)
        except ValidationError:
            return JsonResponse({"error": "email must be an e-mail address"}, status=400)
    order = await sync_to_async(order_find)(data["order_id"])
    if order is None:
        return JsonResponse({"error": "order not found"}, status=404)
    try:
        url = await payment_initiate(order_id=str(order.id), email=email or None)
    except ServiceError as exc:
        return JsonResponse({"error": exc.message}, status=exc.http_status)
    return JsonResponse({"redirect_url": url})
