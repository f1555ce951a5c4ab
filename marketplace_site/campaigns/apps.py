from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "marketplace_site.campaigns"
    label = "campaigns"
    verbose_name = "campaign analytics"
