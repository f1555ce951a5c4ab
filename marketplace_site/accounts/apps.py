from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "marketplace_site.accounts"
    label = "accounts"
