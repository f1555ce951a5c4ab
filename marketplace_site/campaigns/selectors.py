"""A promotion's campaign report: its window against the same length before it.

Revenue is what customers paid: each sale line's total at list price less its
share of the order's promotion and voucher discounts (the worker records the
shares, see campaigns.services).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import BooleanField, Case, Count, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from marketplace_site.campaigns.models import SaleLine
from marketplace_site.catalog.models import Book
from marketplace_site.money_sums import cents
from marketplace_site.promotions.models import Promotion, PromotionStats
from marketplace_site.shop_days import day_starts_at, last_day

TOP_BOOKS = 10
# Bars a side of the chart shows at most: a longer window is binned by more
# days a bar (BIN_DAYS), so a ten-year campaign is still a page, not 7,000 bars.
MAX_BINS_PER_SIDE = 60
BIN_DAYS = (1, 7, 14, 28, 91, 182, 364)


@dataclass(frozen=True, slots=True)
class Sales:
    """What in-scope books sold over some time: gross is at list price."""

    orders: int
    units: int
    gross: Decimal
    promotion_discount: Decimal
    voucher_discount: Decimal

    @property
    def discounts(self) -> Decimal:
        return self.promotion_discount + self.voucher_discount

    @property
    def revenue(self) -> Decimal:
        """What customers paid."""
        return self.gross - self.discounts


@dataclass(frozen=True, slots=True)
class WindowFigures(Sales):
    """Sales from ``starts_at`` (inclusive) to ``ends_at``."""

    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class SalesBin(Sales):
    """Sales of one bar of the chart: one day, or several in a long report,
    cut at the windows' edges, so a bin lies wholly in one window."""

    starts_at: datetime
    ends_at: datetime
    in_campaign: bool


@dataclass(frozen=True, slots=True)
class BookSales:
    book_id: int
    title: str
    units_before: int
    units_during: int
    gross_during: Decimal
    discounts_during: Decimal

    @property
    def revenue_during(self) -> Decimal:
        """What customers paid for it during the campaign."""
        return self.gross_during - self.discounts_during


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    before: int | Decimal
    during: int | Decimal
    # Percent against the window before; None when that window had none.
    change: Decimal | None


@dataclass(frozen=True, slots=True)
class CampaignReport:
    promotion_id: int
    name: str
    # None: every book is in scope.
    category_code: int | None
    scope: str
    running: bool
    campaign: WindowFigures
    before: WindowFigures
    redemptions: int
    discount_total: Decimal
    # Both windows, oldest first, bins without sales included; empty when
    # the campaign has not started.
    bins: tuple[SalesBin, ...]
    # Days a bin spans (the windows' edges cut the first and the last).
    bin_days: int
    # The in-scope books that sold most during the campaign.
    books: tuple[BookSales, ...]

    @property
    def figures(self) -> tuple[Figure, ...]:
        """The windows side by side, for a table; revenue last, net of discounts."""
        rows = (
            ("Orders", "orders"),
            ("Units sold", "units"),
            ("Sales at list price", "gross"),
            ("Promotion discounts", "promotion_discount"),
            ("Voucher discounts", "voucher_discount"),
            ("Revenue (what customers paid)", "revenue"),
        )
        return tuple(
            Figure(
                label,
                getattr(self.before, name),
                getattr(self.campaign, name),
                percent_change(getattr(self.before, name), getattr(self.campaign, name)),
            )
            for label, name in rows
        )

    @property
    def orders_change(self) -> Decimal | None:
        return percent_change(self.before.orders, self.campaign.orders)

    @property
    def units_change(self) -> Decimal | None:
        return percent_change(self.before.units, self.campaign.units)

    @property
    def revenue_change(self) -> Decimal | None:
        return percent_change(self.before.revenue, self.campaign.revenue)


def percent_change(before: Decimal | int, during: Decimal | int) -> Decimal | None:
    if not before:
        return None
    change = (Decimal(during) - Decimal(before)) * 100 / Decimal(before)
    return change.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


# The sums every figure of the report is made of, over sale lines.
_SUMS = {
    "units": Sum("quantity"),
    "gross": Sum("revenue"),
    "promotion_discount": Sum("promotion_discount"),
    "voucher_discount": Sum("voucher_discount"),
}


def _sales(row: dict[str, Any]) -> dict[str, Any]:
    """The fields of Sales from a row of ``_SUMS`` (and ``orders``)."""
    return {
        "orders": int(row.get("orders") or 0),
        "units": int(row.get("units") or 0),
        "gross": cents(row.get("gross")),
        "promotion_discount": cents(row.get("promotion_discount")),
        "voucher_discount": cents(row.get("voucher_discount")),
    }


def campaign_report(*, promotion: Promotion, now: datetime | None = None) -> CampaignReport:
    now = now or timezone.now()
    starts_at = promotion.starts_at
    # A campaign still running is measured up to now; one not started yet has
    # an empty window (and so an empty window before it).
    ends_at = max(starts_at, min(promotion.ends_at, now))
    before_starts_at = starts_at - (ends_at - starts_at)
    category = promotion.category
    category_code = category.code if category is not None else None

    lines = SaleLine.objects.all()
    if category_code is not None:
        lines = lines.filter(category_code=category_code)

    bin_days, bins = _bins(lines, before_starts_at, starts_at, ends_at)
    # Read as an aggregate: SQLite keeps a sum past the column's digits, and
    # the column's own converter would raise on it at every view.
    stats = PromotionStats.objects.filter(promotion=promotion).aggregate(
        redemptions=Sum("redemptions"), discount_total=Sum("discount_total")
    )
    return CampaignReport(
        promotion_id=promotion.pk,
        name=promotion.name,
        category_code=category_code,
        scope=category.name if category is not None else "All books",
        # A promotion staff switched off is not running, whatever its dates.
        running=promotion.active and starts_at <= now < promotion.ends_at,
        campaign=_window_figures(lines, starts_at, ends_at),
        before=_window_figures(lines, before_starts_at, starts_at),
        redemptions=stats["redemptions"] or 0,
        discount_total=cents(stats["discount_total"]),
        bins=bins,
        bin_days=bin_days,
        books=_top_books(lines, before_starts_at, starts_at, ends_at),
    )


def _window_figures(
    lines: QuerySet[SaleLine], starts_at: datetime, ends_at: datetime
) -> WindowFigures:
    totals = lines.filter(sold_at__gte=starts_at, sold_at__lt=ends_at).aggregate(
        orders=Count("order_id", distinct=True), **_SUMS
    )
    return WindowFigures(starts_at=starts_at, ends_at=ends_at, **_sales(totals))


def bin_days_for(days: int) -> int:
    """Days a bar spans for a side of ``days`` days: a day, a week, ... a
    year, or as many years as keep it to MAX_BINS_PER_SIDE bars."""
    for size in BIN_DAYS:
        if math.ceil(days / size) <= MAX_BINS_PER_SIDE:
            return size
    return BIN_DAYS[-1] * math.ceil(days / (BIN_DAYS[-1] * MAX_BINS_PER_SIDE))


def _bins(
    lines: QuerySet[SaleLine], before_starts_at: datetime, starts_at: datetime, ends_at: datetime
) -> tuple[int, tuple[SalesBin, ...]]:
    """Sales by day (in TIME_ZONE) of each window, days without sales
    included. The day the campaign starts is two bins when it starts after
    midnight: its sales before the start are the window before's. A long
    report bins several days a bar, counted from the start outwards."""
    if ends_at <= starts_at:
        return 1, ()
    first_before, last_before = timezone.localdate(before_starts_at), last_day(starts_at)
    first_during, last_during = timezone.localdate(starts_at), last_day(ends_at)
    size = bin_days_for(
        max((last_before - first_before).days, (last_during - first_during).days) + 1
    )

    def before_index(day: date) -> int:  # counted back from the campaign's start
        return (last_before - day).days // size

    def during_index(day: date) -> int:
        return (day - first_during).days // size

    rows = (
        lines.filter(sold_at__gte=before_starts_at, sold_at__lt=ends_at)
        .annotate(
            day=TruncDate("sold_at"),
            during=Case(
                When(sold_at__gte=starts_at, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
        )
        .values("day", "during")
        .annotate(orders=Count("order_id", distinct=True), **_SUMS)
        .order_by()
    )
    sold: dict[tuple[bool, int], list[dict[str, Any]]] = {}
    for row in rows:
        index = during_index(row["day"]) if row["during"] else before_index(row["day"])
        sold.setdefault((row["during"], index), []).append(row)

    # Each bin's (window, index, first day, the day after its last), oldest first.
    step, end_before = timedelta(days=size), last_before + timedelta(days=1)
    spans = [
        (False, index, end_before - (index + 1) * step, end_before - index * step)
        for index in range(before_index(first_before), -1, -1)
    ] + [
        (True, index, first_during + index * step, first_during + (index + 1) * step)
        for index in range(during_index(last_during) + 1)
    ]
    windows = {False: (before_starts_at, starts_at), True: (starts_at, ends_at)}
    bins = tuple(
        _bin(
            sold.get((during, index), []),
            max(windows[during][0], day_starts_at(first)),
            min(windows[during][1], day_starts_at(after)),
            in_campaign=during,
        )
        for during, index, first, after in spans
    )
    return size, bins


def _bin(
    rows: Iterable[dict[str, Any]], starts_at: datetime, ends_at: datetime, *, in_campaign: bool
) -> SalesBin:
    rows = list(rows)
    # Days of a bin never share an order: an order is sold at one instant.
    totals = {
        name: sum((row[name] for row in rows if row[name] is not None), Decimal(0))
        for name in ("orders", *_SUMS)
    }
    return SalesBin(starts_at=starts_at, ends_at=ends_at, in_campaign=in_campaign, **_sales(totals))


def _top_books(
    lines: QuerySet[SaleLine], before_starts_at: datetime, starts_at: datetime, ends_at: datetime
) -> tuple[BookSales, ...]:
    during = Q(sold_at__gte=starts_at)
    rows = list(
        lines.filter(sold_at__gte=before_starts_at, sold_at__lt=ends_at)
        .values("book_id")
        .annotate(
            units_before=Sum("quantity", filter=~during),
            units_during=Sum("quantity", filter=during),
            gross_during=Sum("revenue", filter=during),
            promotion_during=Sum("promotion_discount", filter=during),
            voucher_during=Sum("voucher_discount", filter=during),
        )
        .filter(units_during__gt=0)
        .order_by("-units_during", "book_id")[:TOP_BOOKS]
    )
    titles = dict(
        Book.objects.filter(pk__in=[r["book_id"] for r in rows]).values_list("pk", "title")
    )
    return tuple(
        BookSales(
            book_id=r["book_id"],
            # The ledger outlives books removed from the catalog.
            title=titles.get(r["book_id"], f"Book #{r['book_id']}"),
            units_before=r["units_before"] or 0,
            units_during=r["units_during"],
            gross_during=cents(r["gross_during"]),
            discounts_during=cents(r["promotion_during"]) + cents(r["voucher_during"]),
        )
        for r in rows
    )
