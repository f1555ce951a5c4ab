from django.apps import AppConfig


class VouchersConfig(AppConfig):
    name = "marketplace_site.vouchers"
    label = "vouchers"
