from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from marketplace_site.admin_base import ShopModelAdmin
from marketplace_site.outbox.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ShopModelAdmin):
    list_display = ("id", "event_type", "state", "attempts", "created_at", "sent_at", "last_error")
    list_filter = ("state", "event_type")
    search_fields = ("event_id", "correlation_id")
    readonly_fields = (
        "event_id",
        "event_type",
        "correlation_id",
        "created_at",
        "state",
        "attempts",
        "last_error",
        "sent_at",
    )
    exclude = ("envelope",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboxMessage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OutboxMessage | None = None) -> bool:
        return False
