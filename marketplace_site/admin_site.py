"""The shop's admin site: its name, and a dashboard on its index."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from marketplace_site.catalog.selectors import books_low_in_stock
from marketplace_site.orders.selectors import sales_of_the_day
from marketplace_site.promotions.selectors import promotions_in_their_dates

LOW_STOCK_SHOWN = 10


class BookstoreAdminSite(admin.AdminSite):
    site_header = "Bookstore admin"
    site_title = "Bookstore admin"
    index_title = "Dashboard"
    index_template = "admin/bookstore_index.html"
    # At 1280 px the sidebar took the room of a list's last columns; the
    # breadcrumbs and the index lead everywhere it did.
    enable_nav_sidebar = False

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        return super().index(request, {**staff_dashboard(request), **(extra_context or {})})


def staff_dashboard(request: HttpRequest) -> dict[str, Any]:
    """What the index shows a member of staff: only what they may view."""
    user = request.user
    dashboard: dict[str, Any] = {"currency": settings.SHOP_CURRENCY}
    if user.has_perm("orders.view_order"):
        dashboard["today"] = sales_of_the_day(day=timezone.localdate())
    if user.has_perm("promotions.view_promotion"):
        dashboard["promotions"] = list(promotions_in_their_dates())
    if user.has_perm("catalog.view_book"):
        count, books = books_low_in_stock(
            threshold=settings.LOW_STOCK_THRESHOLD, limit=LOW_STOCK_SHOWN
        )
        dashboard["low_stock"] = {
            "count": count,
            "books": books,
            "threshold": settings.LOW_STOCK_THRESHOLD,
        }
    return {"dashboard": dashboard}
