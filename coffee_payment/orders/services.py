"""Order services: create an order from a QR scan, dispense (make command), record the make result.

Transactional steps are sync functions (Django transactions don't work in async code); the async functions call
them through ``sync_to_async`` and do outbound HTTP outside any transaction (ops-notes "Django under ASGI").
"""

from __future__ import annotations

import logging
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from coffee_payment.devices.models import Device, DeviceStatus
from coffee_payment.integrations.tmetr import MakeCommand, TmetrError, TmetrUnavailable, tmetr_client
from coffee_payment.monitoring.metrics import record_dispense
from coffee_payment.orders.models import Order
from coffee_payment.orders.qr import QrParams
from coffee_payment.orders.state import decide_on_make

logger = logging.getLogger(__name__)


class OrderError(Exception):
    """An order request we refuse; ``http_status`` and the customer-facing ``message``."""

    def __init__(self, message: str, *, http_status: int) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


def _same_purchase(order: Order, qr: QrParams) -> bool:
    return order.device.device_uuid == qr.device_uuid and order.drink_no == qr.drink_no and order.size == qr.size


def _existing_order(machine_uuid: str) -> Order | None:
    return Order.objects.select_related("device").filter(machine_uuid=machine_uuid).first()


def _device(device_uuid: str) -> Device | None:
    return Device.objects.filter(device_uuid=device_uuid).first()


def _create_order(*, device: Device, qr: QrParams, price_kopecks: int) -> Order:
    now = timezone.now()
    try:
        with transaction.atomic():
            return Order.objects.create(
                machine_uuid=qr.machine_uuid,
                device=device,
                drink_no=qr.drink_no,
                drink_name=qr.drink_name,
                size=qr.size,
                price_kopecks=price_kopecks,
                expires_at=now + timedelta(minutes=settings.ORDER_EXPIRATION_MINUTES),
                qr_ts=qr.ts,
                qr_random=qr.random,
                qr_salt=qr.salt,
            )
    except IntegrityError:
        # Two scans of the same QR raced: the other one created it.
        existing = _existing_order(qr.machine_uuid)
        if existing is None:
            raise
        return existing


async def order_get_or_create(*, qr: QrParams) -> Order:
    """The order for a QR scan, keyed by the machine ``uuid`` (rule 1: re-scanning never makes a second order).

    A new order gets its price from Tmetr (never a default price) after an online check (skipped for devices in
    ``test`` status). Raises OrderError: 400 uuid reused for another purchase, 404 unknown/disabled device,
    409 device offline, 502/503 Tmetr price unusable/unavailable."""
    existing = await sync_to_async(_existing_order)(qr.machine_uuid)
    if existing is not None:
        if not _same_purchase(existing, qr):
            raise OrderError("This order code was already used for another drink or machine.", http_status=400)
        return existing
    device = await sync_to_async(_device)(qr.device_uuid)
    if device is None or device.status == DeviceStatus.DISABLED:
        raise OrderError("Unknown coffee machine.", http_status=404)
    tmetr = tmetr_client()
    try:
        if device.status != DeviceStatus.TEST:
            heartbeat = await tmetr.last_heartbeat(device_id=device.tmetr_device_id)
            threshold = timedelta(minutes=settings.DEVICE_ONLINE_THRESHOLD_MINUTES)
            if heartbeat is None or timezone.now() - heartbeat > threshold:
                raise OrderError("This coffee machine is offline right now.", http_status=409)
        price = await tmetr.drink_price(device_id=device.tmetr_device_id, drink_no=qr.drink_no, size=qr.size)
    except TmetrError as exc:
        logger.warning("no price for device %s drink %s: %s", device.device_uuid, qr.drink_no, exc.detail)
        raise OrderError("The price of this drink is not available right now.", http_status=502) from exc
    order = await sync_to_async(_create_order)(device=device, qr=qr, price_kopecks=price)
    if not _same_purchase(order, qr):
        raise OrderError("This order code was already used for another drink or machine.", http_status=400)
    return order


def _make_command(order_id: str) -> MakeCommand:
    order = Order.objects.select_related("device").get(pk=order_id)
    return MakeCommand(
        device_id=order.device.tmetr_device_id,
        order_uuid=order.machine_uuid,
        drink_uuid=order.drink_no,
        size=settings.TMETR_SIZE_WORDS[order.size],
        price_kopecks=order.price_kopecks,
    )


def _record_make(order_id: str, *, accepted: bool, detail: str) -> str:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        decision = decide_on_make(order.status, accepted=accepted)
        order.status = decision.status
        order.make_result = detail[:500]
        order.save(update_fields=["status", "make_result", "updated_at"])
        return order.status


async def order_dispense(*, order_id: str) -> str:
    """Send the make command for an order this caller moved to ``make_pending`` (rule 4) — exactly once; the
    outcome is recorded and never retried: a timeout/5xx is an unknown outcome → ``make_failed`` for staff.
    Returns the order status afterwards."""
    command = await sync_to_async(_make_command)(order_id)
    await sync_to_async(_mark_make_requested)(order_id)
    record_dispense("sent")
    try:
        await tmetr_client().make(command)
    except TmetrError as exc:
        logger.error("make command for order %s failed (not resent): %s", order_id, exc.detail)
        record_dispense("unknown" if isinstance(exc, TmetrUnavailable) else "failed")
        return await sync_to_async(_record_make)(order_id, accepted=False, detail=exc.detail)
    logger.info("make command accepted for order %s on device %s", order_id, command.device_id)
    record_dispense("accepted")
    return await sync_to_async(_record_make)(order_id, accepted=True, detail="accepted")


def _mark_make_requested(order_id: str) -> None:
    Order.objects.filter(pk=order_id).update(make_requested_at=timezone.now())
