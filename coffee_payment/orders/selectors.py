"""Read-side of orders: the status JSON shape."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

from coffee_payment.orders.models import Order
from coffee_payment.orders.state import OrderStatus


def order_find(order_id: str) -> Order | None:
    """The order with its device, or None for an unknown or malformed id."""
    try:
        key = uuid.UUID(str(order_id))
    except ValueError:
        return None
    return Order.objects.select_related("device").filter(pk=key).first()


def order_status_json(order: Order) -> dict[str, Any]:
    """The ``GET /v1/order-status/<order_id>`` body. ``price`` is in rubles (a string with 2 decimals, never a
    float); ``price_kopecks`` is the exact int."""
    from coffee_payment.payments.money import format_rubles

    device = order.device
    expired = order.status in (OrderStatus.CREATED, OrderStatus.NOT_PAID) and order.expires_at <= timezone.now()
    return {
        "order_id": str(order.id),
        "status": order.status,
        "status_text": "This order has expired — please scan the QR code again"
        if expired
        else OrderStatus(order.status).label,
        "drink_name": order.drink_name,
        "drink_size": order.get_size_display(),
        "price": format_rubles(order.price_kopecks),
        "price_kopecks": order.price_kopecks,
        "currency": "RUB",
        "expires_at": order.expires_at.isoformat(),
        "payment_scenario": device.payment_scenario,
        # Where the make command is (queued, sending, accepted, failed, unknown, ...): "" before payment.
        "make_state": order.make_state,
        "can_pay": order.status in (OrderStatus.CREATED, OrderStatus.NOT_PAID) and not expired,
        "device": {"uuid": device.device_uuid, "name": device.name, "location": device.location},
    }
