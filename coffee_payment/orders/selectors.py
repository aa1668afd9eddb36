"""Read-side of orders: the status JSON shape, and its one-query read for the hot path (``status_row``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.utils import timezone

from coffee_payment.orders.display import customer_status, format_money, order_is_expired, order_reference
from coffee_payment.orders.models import DrinkSize, Order
from coffee_payment.orders.state import AttemptStatus, OrderStatus


def order_find(order_id: str) -> Order | None:
    """The order with its device, or None for an unknown or malformed id."""
    try:
        key = uuid.UUID(str(order_id))
    except ValueError:
        return None
    return Order.objects.select_related("device").filter(pk=key).first()


class StatusRow(NamedTuple):
    """What the status JSON shows of an order and its device (``price_kopecks`` in kopecks, ``size`` a
    ``DrinkSize`` value, ``expires_at`` aware UTC). ``continue_url``: the latest live payment's page for a
    ``pending`` order before its expiry, else "". ``refresh_due``: a ``pending`` order has a live attempt whose
    notification is overdue (older than ``PAYMENT_REFRESH_INTERVAL_S`` and not polled within it) — the only case
    in which ``payments.services.payment_refresh_if_stale`` can claim a provider poll."""

    order_id: str
    status: str
    drink_name: str
    size: int
    price_kopecks: int
    expires_at: datetime
    make_state: str
    device_uuid: str
    device_name: str
    location: str
    help_line: str
    payment_scenario: str
    show_provider_name: bool
    continue_url: str
    refresh_due: bool


# One round trip for the hottest read (half of all customer requests): the order joined with its device, the live
# payment's URL and the refresh hint as subqueries. Raw SQL because the ORM's query building and compiling was
# the largest share of a status poll's CPU (docs/performance.md, "Profile of the status JSON"); portable SQL
# (PostgreSQL and SQLite), parameters adapted by the backend's own field and datetime adapters.
_STATUS_SQL = """
SELECT o.id, o.status, o.drink_name, o.size, o.price_kopecks, o.expires_at, o.make_state,
       d.device_uuid, d.name, d.location, d.help_line, d.payment_scenario, d.show_provider_name,
       CASE WHEN o.status = %s AND o.expires_at > %s THEN (
           SELECT a.confirmation_url FROM payments_paymentattempt a
           WHERE a.order_id = o.id AND a.status = %s AND a.confirmation_url <> ''
           ORDER BY a.created_at DESC LIMIT 1) END,
       CASE WHEN o.status = %s THEN EXISTS (
           SELECT 1 FROM payments_paymentattempt a
           WHERE a.order_id = o.id AND a.status = %s AND a.created_at < %s AND a.provider_payment_id IS NOT NULL
             AND (a.last_polled_at IS NULL OR a.last_polled_at < %s)) END
FROM orders_order o JOIN devices_device d ON d.id = o.device_id
WHERE o.id = %s
"""


def _aware(value: datetime | str) -> datetime:
    """A datetime column as aware UTC (SQLite gives naive UTC or text, PostgreSQL aware)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def status_row(order_id: str) -> StatusRow | None:
    """The status JSON's facts of one order in one query, or None for an unknown or malformed id."""
    try:
        key = uuid.UUID(str(order_id))
    except ValueError:
        return None
    now = timezone.now()
    ops = connection.ops
    overdue = ops.adapt_datetimefield_value(now - timedelta(seconds=settings.PAYMENT_REFRESH_INTERVAL_S))
    pending, live = str(OrderStatus.PENDING), str(AttemptStatus.PENDING)
    params = [pending, ops.adapt_datetimefield_value(now), live, pending, live, overdue, overdue]
    params.append(Order._meta.pk.get_db_prep_value(key, connection))
    with connection.cursor() as cursor:
        cursor.execute(_STATUS_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    values[0] = str(uuid.UUID(str(values[0])))
    values[5] = _aware(values[5])
    values[12], values[13], values[14] = bool(values[12]), values[13] or "", bool(values[14])
    return StatusRow(*values)


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
    """The ``GET /v1/order-status/<order_id>`` body of a loaded ``order`` (the status page's first paint); the
    shape is :func:`status_body`'s. One more query for a ``pending`` order before its expiry (its live payment)."""
    live = order.status == OrderStatus.PENDING and order.expires_at > timezone.now()
    device = order.device
    return status_body(
        StatusRow(
            order_id=str(order.id),
            status=order.status,
            drink_name=order.drink_name,
            size=order.size,
            price_kopecks=order.price_kopecks,
            expires_at=order.expires_at,
            make_state=order.make_state,
            device_uuid=device.device_uuid,
            device_name=device.name,
            location=device.location,
            help_line=device.help_line,
            payment_scenario=device.payment_scenario,
            show_provider_name=device.show_provider_name,
            continue_url=_live_payment_url(order) if live else "",
            refresh_due=False,
        )
    )


def _provider_label(name: str) -> str:
    """The registered provider's display label for ``name`` (the name itself for one no longer registered)."""
    from coffee_payment.payments.providers import provider_choices

    return str(dict(provider_choices()).get(name, name))


def status_body(row: StatusRow) -> dict[str, Any]:
    """The ``GET /v1/order-status/<order_id>`` body, texts in the active language. ``price`` is in rubles (a
    string with 2 decimals, never a float); ``price_kopecks`` is the exact int; ``price_display`` the local
    format. ``action`` is what the page offers: ``pay`` | ``pay_again`` | ``continue`` (go to ``continue_url``,
    the live payment's page) | ``""``; ``final`` tells the page to stop polling. ``provider_name`` is shown only
    when the device's display settings ask for it ("" otherwise)."""
    from coffee_payment.payments.money import format_rubles

    expired = order_is_expired(row.status, row.expires_at, timezone.now())
    # Past expiry a payment would arrive too late to dispense automatically: no "continue payment" then (the
    # row's continue_url is "" past expiry).
    shown = customer_status(row.status, expired=expired, can_continue=bool(row.continue_url))
    return {
        "order_id": row.order_id,
        "reference": order_reference(row.order_id),
        "status": row.status,
        "status_text": shown.text,
        "next_step": shown.next_step,
        "action": shown.action,
        "final": shown.final,
        "tone": shown.tone,
        "expired": expired,
        "can_pay": shown.action in ("pay", "pay_again"),
        "continue_url": row.continue_url,
        "drink_name": row.drink_name,
        "drink_size": str(DrinkSize(row.size).label),
        "price": format_rubles(row.price_kopecks),
        "price_kopecks": row.price_kopecks,
        "price_display": format_money(row.price_kopecks),
        "currency": "RUB",
        "expires_at": row.expires_at.isoformat(),
        "payment_scenario": row.payment_scenario,
        # Where the make command is (queued, sending, accepted, failed, unknown, ...): "" before payment.
        "make_state": row.make_state,
        "provider_name": _provider_label(row.payment_scenario) if row.show_provider_name else "",
        "device": {
            "uuid": row.device_uuid,
            "name": row.device_name,
            "location": row.location,
            "help_line": row.help_line,
        },
    }
