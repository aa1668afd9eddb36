"""Merchants, their coffee machines (devices) and their provider credentials."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from coffee_payment.devices.fields import EncryptedTextField
from coffee_payment.payments.providers import provider_choices


class Merchant(models.Model):
    """A business that owns coffee machines and holds provider accounts."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")

    def __str__(self) -> str:
        return self.name


class DeviceStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    TEST = "test", _("Test (skips the online check)")
    DISABLED = "disabled", _("Disabled")


class Device(models.Model):
    """A coffee vending machine. ``device_uuid`` is the ``deviceUuid`` printed in its QR codes;
    ``tmetr_device_id`` is its ``deviceId`` in Tmetr."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="devices", verbose_name=_("merchant"))
    device_uuid = models.CharField(_("machine uuid (deviceUuid)"), max_length=64, unique=True)
    tmetr_device_id = models.CharField(_("Tmetr deviceId"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    location = models.CharField(_("location"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=DeviceStatus.choices, default=DeviceStatus.ACTIVE)
    payment_scenario = models.CharField(_("payment provider"), max_length=16, choices=provider_choices)
    # Display settings of the customer's page.
    help_line = models.CharField(
        _("help line"),
        max_length=100,
        blank=True,
        help_text=_("Phone or contact shown to customers for help, e.g. +7 800 000-00-00"),
    )
    show_provider_name = models.BooleanField(
        _("show the provider"), default=False, help_text=_("Show the payment provider's name on the customer's page")
    )

    class Meta:
        verbose_name = _("machine")
        verbose_name_plural = _("machines")

    def __str__(self) -> str:
        return f"{self.name} ({self.device_uuid})"


class ProviderAccount(models.Model):
    """A merchant's credentials at one provider: YooKassa ``shopId``/secret key or TBank ``TerminalKey``/Password.

    ``secret`` is encrypted at rest (``EncryptedTextField``, key from ``FIELD_ENCRYPTION_KEYS``) and never shown back
    in the admin (write-only field, no lookups)."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="provider_accounts", verbose_name=_("merchant")
    )
    provider = models.CharField(_("provider"), max_length=16, choices=provider_choices)
    account_id = models.CharField(_("account id"), max_length=64, help_text=_("YooKassa shopId or TBank TerminalKey"))
    secret = EncryptedTextField(
        _("secret"), help_text=_("YooKassa secret key or TBank terminal Password (encrypted at rest)")
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "provider"], name="one_account_per_provider"),
        ]
        verbose_name = _("provider account")
        verbose_name_plural = _("provider accounts")

    def __str__(self) -> str:
        return f"{self.merchant} / {self.get_provider_display()} {self.account_id}"
