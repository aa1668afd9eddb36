from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "coffee_payment.orders"
    label = "orders"
