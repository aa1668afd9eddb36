"""Read-side of orders: the status JSON shape."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

from coffee_payment.orders.display import customer_status, format_money, order_is_expired, order_reference
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import AttemptStatus, OrderStatus


def order_find(order_id: str) -> Order | None:
    """The order with its device, or None for an unknown or malformed id."""
    try:
        key = uuid.UUID(str(order_id))
    except ValueError:
        return None
    return Order.objects.select_related("device").filter(pk=key).first()


def _live_payment_url(order: Order) -> str:
    """The confirmation URL of the order's latest live payment ("continue payment"), or ""."""
    from coffee_payment.payments.models import PaymentAttempt

    url = (
        PaymentAttempt.objects.filter(order_id=order.id, status=AttemptStatus.PENDING)
        .exclude(confirmation_url="")
        .order_by("-created_at")
        .values_list("confirmation_url", flat=True)
        .first()
    )
    return url or ""


def order_status_json(order: Order) -> dict[str, Any]:
    """The ``GET /v1/order-status/<order_id>`` body, texts in the active language. ``price`` is in rubles (a
    string with 2 decimals, never a float); ``price_kopecks`` is the exact int; ``price_display`` the local
    format. ``action`` is what the page offers: ``pay`` | ``pay_again`` | ``continue`` (go to ``continue_url``,
    the live payment's page) | ``""``; ``final`` tells the page to stop polling. ``provider_name`` is shown only
    when the device's display settings ask for it ("" otherwise)."""
    from coffee_payment.payments.money import format_rubles

    device = order.device
    now = timezone.now()
    expired = order_is_expired(order.status, order.expires_at, now)
    # Past expiry a payment would arrive too late to dispense automatically: no "continue payment" then.
    live = order.status == OrderStatus.PENDING and order.expires_at > now
    continue_url = _live_payment_url(order) if live else ""
    shown = customer_status(order.status, expired=expired, can_continue=bool(continue_url))
    return {
        "order_id": str(order.id),
        "reference": order_reference(order.id),
        "status": order.status,
        "status_text": shown.text,
        "next_step": shown.next_step,
        "action": shown.action,
        "final": shown.final,
        "tone": shown.tone,
        "expired": expired,
        "can_pay": shown.action in ("pay", "pay_again"),
        "continue_url": continue_url,
        "drink_name": order.drink_name,
        "drink_size": str(order.get_size_display()),
        "price": format_rubles(order.price_kopecks),
        "price_kopecks": order.price_kopecks,
        "price_display": format_money(order.price_kopecks),
        "currency": "RUB",
        "expires_at": order.expires_at.isoformat(),
        "payment_scenario": device.payment_scenario,
        # Where the make command is (queued, sending, accepted, failed, unknown, ...): "" before payment.
        "make_state": order.make_state,
        "provider_name": str(device.get_payment_scenario_display()) if device.show_provider_name else "",
        "device": {
            "uuid": device.device_uuid,
            "name": device.name,
            "location": device.location,
            "help_line": device.help_line,
        },
    }
