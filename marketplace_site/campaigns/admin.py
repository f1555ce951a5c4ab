"""The campaign report: a page and a CSV per promotion, in the promotions' admin."""

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

from marketplace_site.campaigns.chart import report_bars, sales_chart_svg, span_text
from marketplace_site.campaigns.export import campaign_report_rows
from marketplace_site.campaigns.selectors import CampaignReport, campaign_report
from marketplace_site.promotions.models import Promotion


def report_url(promotion: Promotion) -> str:
    return reverse("admin:promotions_promotion_report", args=[promotion.pk])


class CampaignReportAdmin(admin.ModelAdmin):
    """The promotion admin's report pages (URLs named promotions_promotion_report
    and _report_csv) and the columns that lead to them."""

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
