"""Admin for merchants, devices and provider accounts. Provider secrets are write-only: never rendered back, never
filtered, sorted or searched on (a filter would be an oracle: issue 11)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from django.views.decorators.debug import sensitive_post_parameters

from coffee_payment.admin_actions import CheckedSelectionMixin
from coffee_payment.devices.models import Device, Merchant, ProviderAccount


class ProviderAccountForm(forms.ModelForm):
    """Secret shown as an empty password field; leaving it blank keeps the stored value."""

    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        max_length=255,
        strip=False,
        label=_("secret"),
        help_text=_("Write-only. Leave blank to keep the current secret."),
    )

    class Meta:
        model = ProviderAccount
        fields = ["merchant", "provider", "account_id", "secret"]

    def clean_secret(self) -> str:
        secret = self.cleaned_data.get("secret") or ""
        if not secret:
            if self.instance.pk:
                return self.instance.secret
            raise forms.ValidationError(_("A secret is required for a new account."))
        return secret


SECRET_FIELDS = frozenset({"secret"})


@admin.register(ProviderAccount)
@method_decorator(sensitive_post_parameters(*SECRET_FIELDS), name="changeform_view")
class ProviderAccountAdmin(CheckedSelectionMixin, admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ["merchant", "provider", "account_id", "masked_secret"]
    list_filter = ["provider"]
    result_count_label = ngettext_lazy("%(count)d provider account", "%(count)d provider accounts", "count")

    def lookup_allowed(self, lookup: str, value: str, request=None) -> bool:
        """Refuse any querystring lookup on a secret (``?secret__startswith=…`` → 400 for every user and value)."""
        if SECRET_FIELDS.intersection(lookup.split(LOOKUP_SEP)):
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("Secret"))
    def masked_secret(self, obj: ProviderAccount) -> str:
        return _("•••• (set)") if obj.secret else _("— (missing)")


class DeviceInline(admin.TabularInline):
    model = Device
    extra = 0
    fields = ["name", "device_uuid", "tmetr_device_id", "status", "payment_scenario"]


@admin.register(Merchant)
class MerchantAdmin(CheckedSelectionMixin, admin.ModelAdmin):
    list_display = ["name", "created_at"]
    inlines = [DeviceInline]
    result_count_label = ngettext_lazy("%(count)d merchant", "%(count)d merchants", "count")


@admin.register(Device)
class DeviceAdmin(CheckedSelectionMixin, admin.ModelAdmin):
    list_display = ["name", "device_uuid", "tmetr_device_id", "merchant", "status", "payment_scenario"]
    list_filter = ["status", "payment_scenario", "merchant"]
    search_fields = ["name", "device_uuid", "tmetr_device_id"]
    result_count_label = ngettext_lazy("%(count)d machine", "%(count)d machines", "count")
