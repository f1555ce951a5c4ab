from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "marketplace_site.outbox"
    label = "outbox"
