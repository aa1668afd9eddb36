"""Bounds on what one device can make us open at a provider (issue 11: no amplification)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from coffee_payment.devices.models import Device
from coffee_payment.orders.state import LIVE_ATTEMPT
from coffee_payment.payments.models import PaymentAttempt


class TooManyOpenPayments(Exception):
    """The device has ``DEVICE_OPEN_PAYMENTS_MAX`` open provider payments already (``open_count`` of them)."""

    def __init__(self, open_count: int) -> None:
        super().__init__(f"{open_count} open payments on this device")
        self.open_count = open_count


def device_open_payments_check(*, device_id: int, now: datetime) -> None:
    """Call inside the transaction that is about to create a payment attempt, after the order's row lock: locks
    the device row (so concurrent Pay taps on other orders of the same machine count one after another, across
    workers) and counts the device's open payments — attempts being created or pending at the provider, of orders
    not yet expired. Raises TooManyOpenPayments at ``DEVICE_OPEN_PAYMENTS_MAX``."""
    Device.objects.select_for_update().filter(pk=device_id).values_list("pk", flat=True).first()
    open_count = PaymentAttempt.objects.filter(
        order__device_id=device_id, order__expires_at__gt=now, status__in=LIVE_ATTEMPT
    ).count()
    if open_count >= settings.DEVICE_OPEN_PAYMENTS_MAX:
        raise TooManyOpenPayments(open_count)
