from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "marketplace_site.catalog"
    label = "catalog"
