from __future__ import annotations

import csv

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe
from django.utils.text import slugify

from marketplace_site.admin_base import ShopModelAdmin
from marketplace_site.campaigns.chart import report_bars, sales_chart_svg, span_text
from marketplace_site.campaigns.export import campaign_report_rows
from marketplace_site.campaigns.selectors import CampaignReport, campaign_report
from marketplace_site.promotions.models import Promotion, Redemption


def report_url(promotion: Promotion) -> str:
    return reverse("admin:promotions_promotion_report", args=[promotion.pk])


@admin.register(Promotion)
class PromotionAdmin(ShopModelAdmin):
    # The report link next to the name, and the dates and limits two columns,
    # not four: at 1280 px the last column of nine fell off the page.
    list_display = ("name", "report_link", "buy_quantity", "category", "runs", "limits", "active")
    list_display_links = ("name",)
    list_filter = ("active", "category")
    search_fields = ("name",)

    def get_urls(self) -> list[URLPattern]:
        report = [
            path(
                "<int:object_id>/report/",
                self.admin_site.admin_view(self.report_view),
                name="promotions_promotion_report",
            ),
            path(
                "<int:object_id>/report.csv",
                self.admin_site.admin_view(self.report_csv_view),
                name="promotions_promotion_report_csv",
            ),
        ]
        return [*report, *super().get_urls()]

    @admin.display(description="Campaign report")
    def report_link(self, promotion: Promotion) -> str:
        return format_html('<a href="{}" class="report-link">Report</a>', report_url(promotion))

    @admin.display(description="Runs", ordering="starts_at")
    def runs(self, promotion: Promotion) -> str:
        return span_text(promotion.starts_at, promotion.ends_at)

    @admin.display(description="Limits")
    def limits(self, promotion: Promotion) -> str:
        everyone = "no limit" if promotion.global_limit is None else f"{promotion.global_limit}"
        return f"{promotion.per_customer_limit} per customer, {everyone} in all"

    def _report(self, request: HttpRequest, object_id: int) -> tuple[Promotion, CampaignReport]:
        promotion = self.get_object(request, str(object_id))
        if promotion is None:
            raise Http404(f"No promotion with id {object_id}.")
        if not self.has_view_permission(request, promotion):
            raise PermissionDenied
        return promotion, campaign_report(promotion=promotion)

    def report_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        promotion, report = self._report(request, object_id)
        per = "day" if report.bin_days == 1 else f"{report.bin_days} days"
        chart = sales_chart_svg(
            bars=report_bars(report.bins),
            title=f"{promotion.name}: units sold per {per} ({report.scope}); campaign from "
            f"{span_text(report.campaign.starts_at, report.campaign.ends_at)}",
            axis_label=f"Units sold per {per}",
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": promotion,
            "title": f"Campaign report: {promotion.name}",
            "report": report,
            "currency": settings.SHOP_CURRENCY,
            "bin_period": per,
            "csv_url": reverse("admin:promotions_promotion_report_csv", args=[promotion.pk]),
            # Built by our own code with every text escaped.
            "chart": mark_safe(chart),
        }
        return TemplateResponse(request, "campaigns/promotion_report.html", context)

    def report_csv_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        promotion, report = self._report(request, object_id)
        name = slugify(promotion.name)
        filename = (
            f"campaign-{promotion.pk}{'-' + name if name else ''}"
            f"-{timezone.localdate():%Y-%m-%d}.csv"
        )
        response = HttpResponse(
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": content_disposition_header(True, filename)},
        )
        # A byte-order mark: spreadsheets otherwise read UTF-8 as Latin-1.
        response.write("\ufeff")
        csv.writer(response).writerows(campaign_report_rows(report))
        return response


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
