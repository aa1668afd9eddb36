from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "coffee_payment.devices"
    label = "devices"
    verbose_name = "Merchants and devices"
