from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from marketplace_site.admin_base import ShopModelAdmin
from marketplace_site.vouchers.models import Voucher, VoucherRule


@admin.register(VoucherRule)
class VoucherRuleAdmin(ShopModelAdmin):
    list_display = ("name", "nth_purchase", "percent_off", "valid_days", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("name",)


@admin.register(Voucher)
class VoucherAdmin(ShopModelAdmin):
    """Granted by the worker and used by checkout: staff read them, nobody edits them."""

    list_display = (
        "code",
        "owner",
        "rule",
        "percent_off",
        "granted_at",
        "expires_at",
        "used_by_order",
    )
    list_filter = ("rule", "granted_at")
    search_fields = ("code", "owner__username", "owner__email")
    readonly_fields = (
        "code",
        "owner",
        "rule",
        "percent_off",
        "granted_for_order_id",
        "granted_at",
        "expires_at",
        "used_by_order",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Voucher | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Voucher | None = None) -> bool:
        return False
