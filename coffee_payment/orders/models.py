"""Orders: one drink bought at one device, keyed by the machine-made ``uuid`` from the QR link."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from coffee_payment.devices.models import Device
from coffee_payment.orders.state import MakeState, OrderStatus


class DrinkSize(models.IntegerChoices):
    SMALL = 0, _("small")
    MEDIUM = 1, _("medium")
    LARGE = 2, _("large")


class Order(models.Model):
    """An order. ``price_kopecks`` comes from Tmetr at creation and is never defaulted.

    Status changes go only through ``coffee_payment.orders.state`` (the transition table) inside the services'
    row-locked transactions."""

    id = models.UUIDField("ID", primary_key=True, default=uuid.uuid4, editable=False)
    machine_uuid = models.CharField(
        _("machine order uuid"), max_length=255, unique=True, help_text=_("`uuid` from the QR link")
    )
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="orders", verbose_name=_("machine"))
    drink_no = models.CharField(_("drink number (drinkNo)"), max_length=64)
    drink_name = models.CharField(_("drink"), max_length=200)
    size = models.PositiveSmallIntegerField(_("size"), choices=DrinkSize.choices)
    price_kopecks = models.PositiveIntegerField(_("price, kopecks"))
    status = models.CharField(_("status"), max_length=16, choices=OrderStatus.choices, default=OrderStatus.CREATED)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    expires_at = models.DateTimeField(_("expires"))
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    # The make command (durable dispense): ``make_state`` is committed with the move to make_pending (queued)
    # and before the HTTP call (sending, with make_requested_at); see coffee_payment.orders.dispense.
    make_state = models.CharField(
        _("make command"), max_length=16, choices=MakeState.choices, default=MakeState.NONE, blank=True
    )
    make_requested_at = models.DateTimeField(
        _("make sent"), null=True, blank=True, help_text=_("when sending the make started")
    )
    make_result = models.CharField(_("make result"), max_length=500, blank=True)
    # Staff refunds through the admin (coffee_payment/payments/refunds.py): who, when, what the provider said.
    refund_result = models.CharField(_("refund result"), max_length=500, blank=True)
    # Signature parameters of the QR link (algorithm unknown): stored, not verified. Their names are data.
    qr_ts = models.CharField("QR ts", max_length=64, blank=True)
    qr_random = models.CharField("QR random", max_length=64, blank=True)
    qr_salt = models.CharField("QR salt", max_length=128, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["make_state", "status"], name="orders_make_state_idx"),
        ]
        verbose_name = _("order")
        verbose_name_plural = _("orders")

    def __str__(self) -> str:
        from coffee_payment.orders.display import order_reference

        return f"{order_reference(self.id)} ({self.get_status_display()})"


class OrderNeedingAttention(Order):
    """The admin's "needs attention" list: orders in ``state.NEEDS_ATTENTION`` (a proxy: same table)."""

    class Meta:
        proxy = True
        verbose_name = _("order needing attention")
        verbose_name_plural = _("orders needing attention")
