from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "marketplace_site.orders"
    label = "orders"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from marketplace_site.orders.receivers import cart_joins_the_account

        user_logged_in.connect(cart_joins_the_account, dispatch_uid="orders.cart_joins_the_account")
