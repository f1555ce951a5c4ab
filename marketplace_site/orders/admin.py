from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from marketplace_site.admin_base import ShopModelAdmin
from marketplace_site.orders.models import Order, OrderLine


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ("book", "title", "unit_price", "quantity", "line_total")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ShopModelAdmin):
    """Orders are records of what happened: staff read them, nobody edits them."""

    list_display = (
        "id",
        "user",
        "created_at",
        "subtotal",
        "discount",
        "voucher_discount",
        "total",
        "promotion",
    )
    list_filter = ("promotion", "created_at")
    search_fields = ("id", "user__username", "user__email", "correlation_id")
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    readonly_fields = (
        "user",
        "created_at",
        "currency",
        "subtotal",
        "discount",
        "total",
        "promotion",
        "voucher",
        "voucher_discount",
        "correlation_id",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        # Its page is then a view: no Save buttons for fields nobody may change.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False
