from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from marketplace_site.promotions.models import Promotion, Redemption


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "buy_quantity",
        "category",
        "starts_at",
        "ends_at",
        "per_customer_limit",
        "global_limit",
        "active",
    )
    list_filter = ("active", "category")
    search_fields = ("name",)


@admin.register(Redemption)
class RedemptionAdmin(admin.ModelAdmin):
    list_display = ("promotion", "user", "sequence", "order", "discount", "created_at")
    list_filter = ("promotion",)
    search_fields = ("user__username",)
    readonly_fields = ("promotion", "user", "sequence", "order", "discount", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Redemption | None = None) -> bool:
        return False
