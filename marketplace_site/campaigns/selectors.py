"""A promotion's campaign report: its window against the same length before it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from marketplace_site.campaigns.models import DailySales, SaleLine
from marketplace_site.catalog.models import Book
from marketplace_site.promotions.models import Promotion, PromotionStats

CENT = Decimal("0.01")
TOP_BOOKS = 10


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """Sales of in-scope books from ``starts_at`` (inclusive) to ``ends_at``."""

    starts_at: datetime
    ends_at: datetime
    orders: int
    units: int
    revenue: Decimal


@dataclass(frozen=True, slots=True)
class DaySales:
    day: date
    units: int
    revenue: Decimal
    in_campaign: bool


@dataclass(frozen=True, slots=True)
class BookSales:
    book_id: int
    title: str
    units_before: int
    units_during: int
    revenue_during: Decimal


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
    # Percent against the window before; None when that window sold nothing.
    orders_change: Decimal | None
    units_change: Decimal | None
    revenue_change: Decimal | None
    redemptions: int
    discount_total: Decimal
    # Every day of both windows, oldest first, days without sales included.
    days: tuple[DaySales, ...]
    # The in-scope books that sold most during the campaign.
    books: tuple[BookSales, ...]

    @property
    def figures(self) -> tuple[tuple[str, int | Decimal, int | Decimal, Decimal | None], ...]:
        """(what, before, during the campaign, change in percent), for a table."""
        return (
            ("Orders", self.before.orders, self.campaign.orders, self.orders_change),
            ("Units sold", self.before.units, self.campaign.units, self.units_change),
            ("Revenue", self.before.revenue, self.campaign.revenue, self.revenue_change),
        )

    @property
    def campaign_days(self) -> tuple[date, date] | None:
        """The first and last day of the campaign window, for the chart."""
        inside = [d.day for d in self.days if d.in_campaign]
        return (inside[0], inside[-1]) if inside else None


def _cents(amount: Decimal | None) -> Decimal:
    """A sum to the cent (None: nothing to add up), however many digits
    SQLite let it grow to: the default context's 28 would raise past them."""
    if amount is None:
        return Decimal("0.00")
    if not amount.is_finite():
        return amount
    return amount.quantize(CENT, context=Context(prec=max(amount.adjusted() + 4, 1)))


def percent_change(before: Decimal | int, during: Decimal | int) -> Decimal | None:
    if not before:
        return None
    change = (Decimal(during) - Decimal(before)) * 100 / Decimal(before)
    return change.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def campaign_report(*, promotion: Promotion, now: datetime | None = None) -> CampaignReport:
    now = now or timezone.now()
    starts_at = promotion.starts_at
    # A campaign still running is measured up to now; one not started yet has
    # an empty window (and so an empty window before it).
    ends_at = max(starts_at, min(promotion.ends_at, now))
    before_starts_at = starts_at - (ends_at - starts_at)
    category_code = promotion.category.code if promotion.category_id else None

    lines = SaleLine.objects.all()
    daily = DailySales.objects.all()
    if category_code is not None:
        lines = lines.filter(category_code=category_code)
        daily = daily.filter(category_code=category_code)

    campaign = _window_figures(lines, starts_at, ends_at)
    before = _window_figures(lines, before_starts_at, starts_at)
    # Read as an aggregate: SQLite keeps a sum past the column's digits, and
    # the column's own converter would raise on it at every view.
    stats = PromotionStats.objects.filter(promotion=promotion).aggregate(
        redemptions=Sum("redemptions"), discount_total=Sum("discount_total")
    )
    return CampaignReport(
        promotion_id=promotion.pk,
        name=promotion.name,
        category_code=category_code,
        scope=promotion.category.name if promotion.category_id else "All books",
        # A promotion staff switched off is not running, whatever its dates.
        running=promotion.active and starts_at <= now < promotion.ends_at,
        campaign=campaign,
        before=before,
        orders_change=percent_change(before.orders, campaign.orders),
        units_change=percent_change(before.units, campaign.units),
        revenue_change=percent_change(before.revenue, campaign.revenue),
        redemptions=stats["redemptions"] or 0,
        discount_total=_cents(stats["discount_total"]),
        days=_days(daily, before_starts_at, starts_at, ends_at),
        books=_top_books(lines, before_starts_at, starts_at, ends_at),
    )


def _window_figures(
    lines: QuerySet[SaleLine], starts_at: datetime, ends_at: datetime
) -> WindowFigures:
    totals = lines.filter(sold_at__gte=starts_at, sold_at__lt=ends_at).aggregate(
        orders=Count("order_id", distinct=True), units=Sum("quantity"), revenue=Sum("revenue")
    )
    return WindowFigures(
        starts_at=starts_at,
        ends_at=ends_at,
        orders=totals["orders"],
        units=totals["units"] or 0,
        revenue=_cents(totals["revenue"]),
    )


def _days(
    daily: QuerySet[DailySales], before_starts_at: datetime, starts_at: datetime, ends_at: datetime
) -> tuple[DaySales, ...]:
    if ends_at <= starts_at:
        return ()
    first = timezone.localdate(before_starts_at)
    # An end at midnight sold nothing on the day it names.
    last = timezone.localdate(ends_at - timedelta(microseconds=1))
    campaign_first = timezone.localdate(starts_at)
    sold = {
        row["day"]: row
        for row in daily.filter(day__range=(first, last))
        .values("day")
        .annotate(units=Sum("units"), revenue=Sum("revenue"))
    }
    days = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        row = sold.get(day)
        days.append(
            DaySales(
                day=day,
                units=row["units"] if row else 0,
                revenue=_cents(row["revenue"] if row else None),
                in_campaign=day >= campaign_first,
            )
        )
    return tuple(days)


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
            revenue_during=Sum("revenue", filter=during),
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
            revenue_during=_cents(r["revenue_during"]),
        )
        for r in rows
    )
