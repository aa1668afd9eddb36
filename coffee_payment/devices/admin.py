"""Admin for merchants, devices and provider accounts. Provider secrets are write-only: never rendered back."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from coffee_payment.devices.models import Device, Merchant, ProviderAccount


class ProviderAccountForm(forms.ModelForm):
    """Secret shown as an empty password field; leaving it blank keeps the stored value."""

    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Write-only. Leave blank to keep the current secret.",
    )

    class Meta:
        model = ProviderAccount
        fields = ["merchant", "provider", "account_id", "secret"]

    def clean_secret(self) -> str:
        secret = self.cleaned_data.get("secret") or ""
        if not secret:
            if self.instance.pk:
                return self.instance.secret
            raise forms.ValidationError("A secret is required for a new account.")
        return secret


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ["merchant", "provider", "account_id", "masked_secret"]
    list_filter = ["provider"]

    @admin.display(description="Secret")
    def masked_secret(self, obj: ProviderAccount) -> str:
        return "••••" + obj.secret[-2:] if len(obj.secret) > 6 else "••••"


class DeviceInline(admin.TabularInline):
    model = Device
    extra = 0
    fields = ["name", "device_uuid", "tmetr_device_id", "status", "payment_scenario"]


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    inlines = [DeviceInline]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["name", "device_uuid", "tmetr_device_id", "merchant", "status", "payment_scenario"]
    list_filter = ["status", "payment_scenario", "merchant"]
    search_fields = ["name", "device_uuid", "tmetr_device_id"]
