"""Admin for orders: a list that fits a 1280 px screen, prices in rubles, staff status names, search by the
customer's order reference, machine uuid or provider payment id, and the "needs attention" list with the actions
staff take after a failure (mark made; refund through the provider after a confirmation page)."""

from __future__ import annotations

import uuid

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, ngettext_lazy

from coffee_payment.admin_actions import CheckedSelectionMixin, EvidenceMixin
from coffee_payment.orders.display import format_money, order_reference, reference_prefix
from coffee_payment.orders.models import Order, OrderNeedingAttention
from coffee_payment.orders.state import MONEY_TAKEN, NEEDS_ATTENTION, MakeState, OrderStatus
from coffee_payment.payments.models import PaymentAttempt
from coffee_payment.payments.refunds import RefundError, payment_refund

# Orders staff may mark made after checking the machine: those that need attention, and those whose make Tmetr
# accepted. A make still owed (queued) or being sent is the system's to finish (docs/operations.md §5): marking it
# made would cancel the make the customer paid for before it left the building.
MARKABLE_MADE = Q(status__in=NEEDS_ATTENTION) | Q(status=OrderStatus.MAKE_PENDING, make_state=MakeState.ACCEPTED)


class PaymentAttemptInline(admin.TabularInline):
    model = PaymentAttempt
    extra = 0
    can_delete = False
    fields = ["provider", "provider_payment_id", "status", "amount_kopecks", "created_at", "error"]
    readonly_fields = fields


class NeedsAttentionFilter(admin.SimpleListFilter):
    title = gettext_lazy("needs attention")
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", _("Make failed, outcome unknown or paid late"))]

    def queryset(self, request, queryset):
        return queryset.filter(status__in=NEEDS_ATTENTION) if self.value() == "yes" else queryset


@admin.register(Order)
class OrderAdmin(EvidenceMixin, CheckedSelectionMixin, admin.ModelAdmin):
    list_display = ["reference", "created", "machine", "drink", "price", "status_name"]
    list_display_links = ["reference"]
    list_filter = [NeedsAttentionFilter, "status", "make_state", "device__payment_scenario"]
    list_select_related = ["device"]
    search_fields = ["machine_uuid", "device__device_uuid", "attempts__provider_payment_id"]
    search_help_text = gettext_lazy("Order reference (1A2B-3C4D), machine order uuid or provider payment id")
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [PaymentAttemptInline]
    actions = ["mark_made", "refund_through_provider"]
    list_per_page = 50
    # "N orders" under the list, in the language's plural forms (admin/counted_pagination.html).
    result_count_label = ngettext_lazy("%(count)d order", "%(count)d orders", "count")

    @admin.display(description=gettext_lazy("Order"), ordering="id")
    def reference(self, obj: Order) -> str:
        return format_html('<span style="white-space:nowrap">{}</span>', order_reference(obj.id))

    @admin.display(description=gettext_lazy("Created"), ordering="created_at")
    def created(self, obj: Order) -> str:
        return obj.created_at.strftime("%d.%m %H:%M")

    @admin.display(description=gettext_lazy("Machine"), ordering="device__name")
    def machine(self, obj: Order) -> str:
        return obj.device.location or obj.device.name

    @admin.display(description=gettext_lazy("Drink"), ordering="drink_name")
    def drink(self, obj: Order) -> str:
        return f"{obj.drink_name} · {obj.get_size_display()}"

    @admin.display(description=gettext_lazy("Price"), ordering="price_kopecks")
    def price(self, obj: Order) -> str:
        return format_money(obj.price_kopecks)

    @admin.display(description=gettext_lazy("Status"), ordering="status")
    def status_name(self, obj: Order) -> str:
        return obj.get_status_display()

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        """Also find orders by the customer's short reference (the order id's first 8 hex digits)."""
        prefix = reference_prefix(search_term)
        if prefix is None:
            return super().get_search_results(request, queryset, search_term)
        # UUIDs are stored as 32 hex digits (SQLite) or native uuid (PostgreSQL): compare the id range.
        low, high = int(prefix + "0" * 24, 16), int(prefix + "f" * 24, 16)
        by_reference = Q(id__gte=uuid.UUID(int=low), id__lte=uuid.UUID(int=high))
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return found | queryset.filter(by_reference), may_have_duplicates

    # Actions change orders (and move money): they need the change permission, not only the view one (an action
    # without ``permissions`` is offered to, and run for, every staff user who can see the list).
    @admin.action(description=gettext_lazy("Mark as made (after checking the machine)"), permissions=["change"])
    def mark_made(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():
            locked = queryset.select_for_update()
            changed = locked.filter(MARKABLE_MADE).update(status=OrderStatus.SUCCESSFUL, updated_at=timezone.now())
            in_flight = [
                order_reference(pk)
                for pk in locked.filter(status=OrderStatus.MAKE_PENDING).values_list("pk", flat=True)
            ]
        if in_flight:
            text = _(
                "Not marked made: the make command is still queued or being sent, the system finishes it: %(orders)s"
            )
            self.message_user(request, text % {"orders": ", ".join(in_flight)}, messages.WARNING)
        self.message_user(
            request,
            ngettext(
                "%(count)d order marked made; others were not waiting for a make.",
                "%(count)d orders marked made; others were not waiting for a make.",
                changed,
            )
            % {"count": changed},
        )

    @admin.action(description=gettext_lazy("Refund through the provider…"), permissions=["change"])
    def refund_through_provider(self, request: HttpRequest, queryset: QuerySet):
        """First a confirmation page listing the orders; on "Yes, refund" each is refunded at its provider and
        the result recorded on the order (coffee_payment/payments/refunds.py)."""
        orders = list(queryset.select_related("device"))
        refundable = [o for o in orders if o.status in MONEY_TAKEN]
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": _("Refund through the provider?"),
                "opts": self.model._meta,
                "orders": [(o, order_reference(o.id), format_money(o.price_kopecks)) for o in refundable],
                "skipped": [order_reference(o.id) for o in orders if o.status not in MONEY_TAKEN],
                "action_name": "refund_through_provider",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/orders/refund_confirmation.html", context)
        actor = request.user.get_username()
        for order in orders:
            if order.status not in MONEY_TAKEN:  # e.g. refunded since the confirmation page was shown
                text = _("%(reference)s: skipped — no taken payment to refund.")
                self.message_user(request, text % {"reference": order_reference(order.id)}, messages.WARNING)
        for order in refundable:
            try:
                result = async_to_sync(payment_refund)(order=order, actor=actor)
            except RefundError as exc:
                self.message_user(request, f"{order_reference(order.id)}: {exc.message}", messages.ERROR)
                continue
            text = _("%(reference)s: refund sent to %(provider)s, its answer: %(answer)s. Order status: %(status)s.")
            names = {"reference": order_reference(order.id), "provider": order.device.get_payment_scenario_display()}
            status = OrderStatus(result.order_status).label
            self.message_user(request, text % {**names, "answer": result.answer, "status": status})
        return None


@admin.register(OrderNeedingAttention)
class OrderNeedingAttentionAdmin(OrderAdmin):
    """Only the paid orders that wait for staff: check the machine, then mark made or refund."""

    list_filter = ["status", "device__payment_scenario"]
    result_count_label = ngettext_lazy(
        "%(count)d order needing attention", "%(count)d orders needing attention", "count"
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(status__in=NEEDS_ATTENTION)
