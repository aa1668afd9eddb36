"""Admin for payment attempts and the notification inbox (read-only: evidence, not data to edit)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.utils.translation import gettext, ngettext_lazy
from django.utils.translation import gettext_lazy as _

from coffee_payment.admin_actions import CheckedSelectionMixin, EvidenceMixin
from coffee_payment.orders.display import format_money, order_reference
from coffee_payment.payments.models import Notification, NotificationVerdict, PaymentAttempt
from coffee_payment.payments.notifications import notification_replay


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(EvidenceMixin, CheckedSelectionMixin, admin.ModelAdmin):
    list_display = ["provider_payment_id", "order_ref", "provider", "status", "amount", "created_at"]
    list_filter = ["provider", "status"]
    list_select_related = ["order"]
    search_fields = ["provider_payment_id", "order__machine_uuid"]
    readonly_fields = [f.name for f in PaymentAttempt._meta.fields]
    result_count_label = ngettext_lazy("%(count)d payment attempt", "%(count)d payment attempts", "count")

    @admin.display(description=_("Order"))
    def order_ref(self, obj: PaymentAttempt) -> str:
        return order_reference(obj.order_id)

    @admin.display(description=_("Amount"), ordering="amount_kopecks")
    def amount(self, obj: PaymentAttempt) -> str:
        return format_money(obj.amount_kopecks)


@admin.register(Notification)
class NotificationAdmin(EvidenceMixin, CheckedSelectionMixin, admin.ModelAdmin):
    """The inbox: when, from which provider, what we decided (verdict), for which order, and why."""

    list_display = ["received_at", "provider", "verdict_name", "order_ref", "short_detail"]
    list_filter = ["verdict", "provider"]
    list_select_related = ["attempt"]
    search_fields = ["attempt__provider_payment_id", "attempt__order__machine_uuid", "detail", "=body_sha256"]
    readonly_fields = [f.name for f in Notification._meta.fields]
    date_hierarchy = "received_at"
    actions = ["reprocess"]
    result_count_label = ngettext_lazy("%(count)d notification", "%(count)d notifications", "count")

    @admin.display(description=_("Verdict"), ordering="verdict")
    def verdict_name(self, obj: Notification) -> str:
        return obj.get_verdict_display()

    @admin.display(description=_("Order"))
    def order_ref(self, obj: Notification) -> str:
        return order_reference(obj.attempt.order_id) if obj.attempt else "—"

    @admin.display(description=_("Detail"))
    def short_detail(self, obj: Notification) -> str:
        return obj.detail if len(obj.detail) <= 90 else obj.detail[:89] + "…"

    @admin.action(
        description=_("Re-process (same checks as on arrival; an applied notification is a no-op)"),
        permissions=["change"],
    )
    def reprocess(self, request, queryset) -> None:
        for notification_id in queryset.values_list("pk", flat=True):
            try:
                verdict = async_to_sync(notification_replay)(notification_id)
            except Notification.DoesNotExist:  # deleted since the list was shown (prune_notifications)
                text = gettext("Notification %(id)s no longer exists (deleted by the retention job).")
                messages.add_message(request, messages.WARNING, text % {"id": notification_id})
                continue
            level = messages.SUCCESS if verdict.http_status < 500 else messages.ERROR
            text = gettext("Notification %(id)s: %(verdict)s (%(detail)s)")
            messages.add_message(
                request,
                level,
                text
                % {
                    "id": notification_id,
                    "verdict": NotificationVerdict(verdict.verdict).label,
                    "detail": verdict.detail,
                },
            )
