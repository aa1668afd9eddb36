"""Order services: create an order from a QR scan (the make command lives in ``coffee_payment.orders.dispense``).

Transactional steps are sync functions (Django transactions don't work in async code); the async functions call
them through ``sync_to_async`` and do outbound HTTP outside any transaction (docs/serving.md §8).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from coffee_payment.devices.models import Device, DeviceStatus
from coffee_payment.errors import Conflict, InvalidRequest, NotFound, UpstreamError
from coffee_payment.integrations.tmetr import TmetrError, tmetr_client
from coffee_payment.orders.models import Order
from coffee_payment.orders.qr import QrParams

logger = logging.getLogger(__name__)


def _same_purchase(order: Order, qr: QrParams) -> bool:
    return order.device.device_uuid == qr.device_uuid and order.drink_no == qr.drink_no and order.size == qr.size


def _existing_order(machine_uuid: str) -> Order | None:
    return Order.objects.select_related("device").filter(machine_uuid=machine_uuid).first()


def _order_or_device(qr: QrParams) -> tuple[Order | None, Device | None]:
    """The scan's existing order (device loaded), else the scanned device (None when unknown): one thread hop."""
    existing = _existing_order(qr.machine_uuid)
    if existing is not None:
        return existing, existing.device
    return None, Device.objects.filter(device_uuid=qr.device_uuid).first()


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


async def _online_price(device: Device, qr: QrParams) -> int:
    """Tmetr's price in kopecks for the scanned drink, after the device's online check (skipped for devices in
    ``test`` status) — both asked at once, so a scan waits one Tmetr round trip, not two (domain.md §1, steps 1–2).

    Offline wins over everything else the calls say: an offline device is Conflict (409) even when the price call
    failed too. Then a Tmetr failure of either call is UpstreamError (502; never a default price). Anything else
    (a bug, a cancellation) propagates."""
    tmetr = tmetr_client()
    check_online = device.status != DeviceStatus.TEST
    heartbeat_call = tmetr.last_heartbeat(device_id=device.tmetr_device_id) if check_online else _no_heartbeat()
    price_call = tmetr.drink_price(device_id=device.tmetr_device_id, drink_no=qr.drink_no, size=qr.size)
    heartbeat, price = await asyncio.gather(heartbeat_call, price_call, return_exceptions=True)
    if check_online and not isinstance(heartbeat, BaseException):
        threshold = timedelta(minutes=settings.DEVICE_ONLINE_THRESHOLD_MINUTES)
        if heartbeat is None or timezone.now() - heartbeat > threshold:
            if isinstance(price, Exception) and not isinstance(price, TmetrError):  # a bug: never silent
                logger.error("price call for device %s failed", device.device_uuid, exc_info=price)
            raise Conflict(_("This coffee machine is offline right now."))
    for outcome in (heartbeat, price):
        if isinstance(outcome, TmetrError):
            logger.warning("no price for device %s drink %s: %s", device.device_uuid, qr.drink_no, outcome.detail)
            raise UpstreamError(_("The price of this drink is not available right now.")) from outcome
        if isinstance(outcome, BaseException):
            raise outcome
    return price


async def _no_heartbeat() -> None:
    return None


async def order_get_or_create(*, qr: QrParams) -> Order:
    """The order for a QR scan, keyed by the machine ``uuid`` (re-scanning never makes a second order:
    docs/domain.md §5 rule 1).

    A new order gets its price from Tmetr (never a default price) after an online check (skipped for devices in
    ``test`` status). Raises (``coffee_payment.errors``) InvalidRequest: uuid reused for another purchase;
    NotFound: unknown or disabled device; Conflict: device offline; UpstreamError: Tmetr price unusable or
    unavailable."""
    existing, device = await sync_to_async(_order_or_device)(qr)
    if existing is not None:
        if not _same_purchase(existing, qr):
            raise InvalidRequest(_("This order code was already used for another drink or machine."))
        return existing
    if device is None or device.status == DeviceStatus.DISABLED:
        raise NotFound(_("Unknown coffee machine."))
    price = await _online_price(device, qr)
    order = await sync_to_async(_create_order)(device=device, qr=qr, price_kopecks=price)
    if not _same_purchase(order, qr):
        raise InvalidRequest(_("This order code was already used for another drink or machine."))
    return order
