from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "marketplace_site.orders"
    label = "orders"
