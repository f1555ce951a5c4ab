from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from marketplace_site.admin_base import ShopModelAdmin
from marketplace_site.campaigns.chart import sales_chart_svg
from marketplace_site.campaigns.selectors import campaign_report
from marketplace_site.promotions.models import Promotion, Redemption


@admin.register(Promotion)
class PromotionAdmin(ShopModelAdmin):
    list_display = (
        "name",
        "buy_quantity",
        "category",
        "starts_at",
        "ends_at",
        "per_customer_limit",
        "global_limit",
        "active",
        "report_link",
    )
    list_filter = ("active", "category")
    search_fields = ("name",)

    def get_urls(self) -> list[URLPattern]:
        report = path(
            "<int:object_id>/report/",
            self.admin_site.admin_view(self.report_view),
            name="promotions_promotion_report",
        )
        return [report, *super().get_urls()]

    @admin.display(description="Campaign report")
    def report_link(self, promotion: Promotion) -> str:
        url = reverse("admin:promotions_promotion_report", args=[promotion.pk])
        return format_html('<a href="{}">Report</a>', url)

    def report_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        promotion = self.get_object(request, str(object_id))
        if promotion is None:
            raise Http404(f"No promotion with id {object_id}.")
        if not self.has_view_permission(request, promotion):
            raise PermissionDenied
        report = campaign_report(promotion=promotion)
        chart = sales_chart_svg(
            points=[(d.day, d.units) for d in report.days],
            window=report.campaign_days,
            title=f"{promotion.name}: units sold per day ({report.scope})",
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": promotion,
            "title": f"Campaign report: {promotion.name}",
            "report": report,
            # Built by our own code with every text escaped.
            "chart": mark_safe(chart),
        }
        return TemplateResponse(request, "campaigns/promotion_report.html", context)


@admin.register(Redemption)
class RedemptionAdmin(ShopModelAdmin):
    list_display = ("promotion", "user", "sequence", "order", "discount", "created_at")
    list_filter = ("promotion",)
    search_fields = ("user__username",)
    readonly_fields = ("promotion", "user", "sequence", "order", "discount", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Redemption | None = None) -> bool:
        return False
