from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "coffee_payment.payments"
    label = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        from coffee_payment import checks  # noqa: F401  (registers the system checks)
