"""Admin for payment attempts and the notification inbox (read-only: evidence, not data to edit)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib import admin, messages

from coffee_payment.payments.models import Notification, PaymentAttempt
from coffee_payment.payments.notifications import notification_replay


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
    actions = ["reprocess"]

    @admin.action(description="Re-process (same checks as on arrival; an applied notification is a no-op)")
    def reprocess(self, request, queryset) -> None:
        for notification_id in queryset.values_list("pk", flat=True):
            verdict = async_to_sync(notification_replay)(notification_id)
            level = messages.SUCCESS if verdict.http_status < 500 else messages.ERROR
            messages.add_message(
                request, level, f"Notification {notification_id}: {verdict.verdict} ({verdict.detail})"
            )
