from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from marketplace_site.admin_base import ShopModelAdmin
from marketplace_site.campaigns.admin import CampaignReportAdmin
from marketplace_site.promotions.models import Promotion, Redemption


@admin.register(Promotion)
class PromotionAdmin(CampaignReportAdmin, ShopModelAdmin):
    # The report link next to the name, and the dates and limits two columns,
    # not four: at 1280 px the last column of nine fell off the page.
    list_display = ("name", "report_link", "buy_quantity", "category", "runs", "limits", "active")
    list_display_links = ("name",)
    list_filter = ("active", "category")
    search_fields = ("name",)

    @admin.display(description="Limits")
    def limits(self, promotion: Promotion) -> str:
        everyone = "no limit" if promotion.global_limit is None else f"{promotion.global_limit}"
        return f"{promotion.per_customer_limit} per customer, {everyone} in all"


@admin.register(Redemption)
class RedemptionAdmin(ShopModelAdmin):
    """The ledger of promotion use, written by checkout: staff read it."""

    list_display = ("promotion", "user", "sequence", "order", "discount", "created_at")
    list_filter = ("promotion",)
    search_fields = ("user__username",)
    readonly_fields = ("promotion", "user", "sequence", "order", "discount", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Redemption | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Redemption | None = None) -> bool:
        return False
