"""URL map. The customer paths are printed in QR codes already: keep their shapes (docs/domain.md §1)."""

from django.conf import settings
from django.contrib import admin
from django.urls import path

from coffee_payment.orders import views as orders
from coffee_payment.payments import views as payments
from coffee_payment.payments.providers import PROVIDERS

urlpatterns = [
    path("v1/pay", orders.pay, name="pay"),
    # Legacy aliases: QR codes printed for the previous service use them with the same query (docs/domain.md §1).
    path("v1/yook-pay", orders.pay, name="pay-legacy-yookassa"),
    path("v1/tbank-pay", orders.pay, name="pay-legacy-tbank"),
    path("v1/order-status-page", orders.order_status_page, name="order-status-page"),
    path("v1/order-status/<str:order_id>", orders.order_status, name="order-status"),
    path("v1/initiate-payment", orders.initiate_payment, name="initiate-payment"),
    # One webhook per registered provider, at its webhook_path (v1/yook-pay-webhook, v1/tbank-webhook).
    *(
        path(p.webhook_path.lstrip("/"), payments.webhook, {"provider": name}, name=f"{name}-webhook")
        for name, p in PROVIDERS.items()
    ),
    path(f"{settings.ADMIN_URL_PREFIX}/", admin.site.urls),  # ADMIN_URL_PREFIX, default admin
]
