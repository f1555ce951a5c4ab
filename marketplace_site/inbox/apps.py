from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "marketplace_site.inbox"
    label = "inbox"
