"""A campaign report as CSV rows, for a spreadsheet: its figures, its bins
and its books, each a table under a heading, a blank row between them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from marketplace_site.campaigns.selectors import CampaignReport, Sales

Cell = str | int | Decimal
# What a spreadsheet reads as the start of a formula; some skip a leading tab
# or carriage return before looking.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Cell) -> Cell:
    """Text that would start a formula is given a leading apostrophe, so a
    spreadsheet shows it as text instead of running it (CSV injection). The
    numbers are the report's own, never text from anyone, and stay numbers
    (a negative change is -12.5, not a formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _when(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def _money(sales: Sales) -> list[Cell]:
    return [
        sales.orders,
        sales.units,
        sales.gross,
        sales.promotion_discount,
        sales.voucher_discount,
        sales.revenue,
    ]


def campaign_report_rows(report: CampaignReport) -> Iterator[list[Cell]]:
    """The report's rows, every cell safe to open in a spreadsheet."""
    for row in _rows(report):
        yield [csv_cell(cell) for cell in row]


def _rows(report: CampaignReport) -> Iterator[list[Cell]]:
    yield ["Campaign report", report.name]
    yield ["In scope", report.scope]
    yield ["Times in", timezone.get_current_timezone_name()]
    yield ["Campaign", _when(report.campaign.starts_at), _when(report.campaign.ends_at)]
    yield ["Compared with", _when(report.before.starts_at), _when(report.before.ends_at)]
    yield []
    yield ["Figure", "Before", "Campaign", "Change %"]
    for figure in report.figures:
        change: Cell = "" if figure.change is None else figure.change
        yield [figure.label, figure.before, figure.during, change]
    yield ["Redemptions of this promotion", "", report.redemptions, ""]
    yield ["Discount this promotion gave", "", report.discount_total, ""]
    yield []
    sums = [
        "Orders",
        "Units sold",
        "Sales at list price",
        "Promotion discounts",
        "Voucher discounts",
        "Revenue",
    ]
    yield ["From", "Until", "Window", *sums]
    for sales_bin in report.bins:
        window = "campaign" if sales_bin.in_campaign else "before"
        yield [_when(sales_bin.starts_at), _when(sales_bin.ends_at), window, *_money(sales_bin)]
    yield []
    yield [
        "Book id",
        "Book",
        "Units before",
        "Units during",
        "Sales at list price during",
        "Discounts during",
        "Revenue during",
    ]
    for book in report.books:
        yield [
            book.book_id,
            book.title,
            book.units_before,
            book.units_during,
            book.gross_during,
            book.discounts_during,
            book.revenue_during,
        ]
