from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DevicesConfig(AppConfig):
    name = "coffee_payment.devices"
    label = "devices"
    verbose_name = _("Merchants and devices")

    def ready(self) -> None:
        from coffee_payment.devices import checks  # noqa: F401  (registers the encryption-key checks)
