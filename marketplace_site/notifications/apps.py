from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "marketplace_site.notifications"
    label = "notifications"
