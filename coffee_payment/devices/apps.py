from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "coffee_payment.devices"
    label = "devices"
    verbose_name = "Merchants and devices"

    def ready(self) -> None:
        from coffee_payment.devices import checks  # noqa: F401  (registers the encryption-key checks)
