"""Admin for orders, with the manual actions staff need after a failure."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction

from coffee_payment.orders.models import Order
from coffee_payment.orders.state import NEEDS_ATTENTION, OrderStatus
from coffee_payment.payments.models import PaymentAttempt


class PaymentAttemptInline(admin.TabularInline):
    model = PaymentAttempt
    extra = 0
    can_delete = False
    fields = ["provider", "provider_payment_id", "status", "amount_kopecks", "created_at", "error"]
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "machine_uuid",
        "device",
        "drink_name",
        "size",
        "price_kopecks",
        "status",
        "make_state",
        "created_at",
    ]
    list_filter = ["status", "make_state", "device__payment_scenario"]
    search_fields = ["id", "machine_uuid", "attempts__provider_payment_id"]
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [PaymentAttemptInline]
    actions = ["mark_successful"]

    @admin.action(description="Mark as made (successful) — after checking the machine")
    def mark_successful(self, request, queryset) -> None:
        allowed = (OrderStatus.MAKE_PENDING, *NEEDS_ATTENTION)
        with transaction.atomic():
            changed = queryset.select_for_update().filter(status__in=allowed).update(status=OrderStatus.SUCCESSFUL)
        messages.info(request, f"{changed} order(s) marked successful; others were not in a make state.")
