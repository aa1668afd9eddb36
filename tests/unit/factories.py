"""Database rows for tests: one merchant, device, order and payment attempt factory shared by the test files
(each call makes fresh unique ids, so tests in one database never collide)."""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.utils import timezone

from coffee_payment.devices.models import Device, DeviceStatus, Merchant, ProviderAccount
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import AttemptStatus, OrderStatus
from coffee_payment.payments.models import PaymentAttempt

PRICE = 15000  # kopecks
_serial = itertools.count()


def make_order(
    *,
    status: str = OrderStatus.PENDING,
    provider: str = "yookassa",
    expires_in: timedelta = timedelta(minutes=15),
    account_id: str = "shop",
    secret: str = "secret",
    size: int = 1,
    machine_uuid: str = "",
    device_status: str = DeviceStatus.ACTIVE,
    **device_fields,
) -> Order:
    """An order of a fresh merchant (with a ``provider`` account) and device; ``price_kopecks`` is :data:`PRICE`.
    ``device_fields`` (``name``, ``location``, ``help_line``, ...) override the device's defaults;
    ``machine_uuid`` defaults to a fresh unique one."""
    n = next(_serial)
    merchant = Merchant.objects.create(name=f"Merchant {n}")
    ProviderAccount.objects.create(merchant=merchant, provider=provider, account_id=account_id, secret=secret)
    device = Device.objects.create(
        **{
            "merchant": merchant,
            "device_uuid": f"dev-{n}",
            "tmetr_device_id": f"tm-{n}",
            "name": f"Machine {n}",
            "payment_scenario": provider,
            "status": device_status,
            **device_fields,
        }
    )
    return Order.objects.create(
        machine_uuid=machine_uuid or f"machine-order-{n}",
        device=device,
        drink_no="d7",
        drink_name="Капучино",
        size=size,
        price_kopecks=PRICE,
        status=status,
        expires_at=timezone.now() + expires_in,
    )


def make_attempt(
    order: Order,
    *,
    payment_id: str | None = "pay-1",
    status: str = AttemptStatus.PENDING,
    amount: int = PRICE,
    age: timedelta | None = None,
) -> PaymentAttempt:
    """A payment attempt of ``order`` at its device's provider, ``age`` old when given."""
    attempt = PaymentAttempt.objects.create(
        order=order,
        provider=order.device.payment_scenario,
        provider_payment_id=payment_id,
        amount_kopecks=amount,
        status=status,
    )
    if age is not None:
        PaymentAttempt.objects.filter(pk=attempt.pk).update(created_at=timezone.now() - age)
        attempt.refresh_from_db()
    return attempt
