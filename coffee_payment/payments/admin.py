"""Admin for payment attempts and the notification inbox (read-only: evidence, not data to edit)."""

from __future__ import annotations

from django.contrib import admin

from coffee_payment.payments.models import Notification, PaymentAttempt


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(admin.ModelAdmin):
    list_display = ["id", "order", "provider", "provider_payment_id", "status", "amount_kopecks", "created_at"]
    list_filter = ["provider", "status"]
    search_fields = ["id", "provider_payment_id", "order__id"]
    readonly_fields = [f.name for f in PaymentAttempt._meta.fields]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "provider", "received_at", "remote_addr", "verdict", "detail"]
    list_filter = ["provider", "verdict"]
    readonly_fields = [f.name for f in Notification._meta.fields]
