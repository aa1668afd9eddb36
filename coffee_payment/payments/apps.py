from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "coffee_payment.payments"
    label = "payments"

    def ready(self) -> None:
        from coffee_payment import checks  # noqa: F401  (registers the system checks)
