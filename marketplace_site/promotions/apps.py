from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    name = "marketplace_site.promotions"
    label = "promotions"
