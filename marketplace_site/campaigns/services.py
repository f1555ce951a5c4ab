"""The sales ledgers, written by the worker from PurchaseCompleted events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from bookstore.events.v1 import events_pb2
from events.contracts import Event, carries_discount_shares
from marketplace_site.accounts.selectors import purchase_customers
from marketplace_site.campaigns.models import DailySales, SaleLine
from marketplace_site.counters import counters_add
from marketplace_site.orders.discount_shares import LineDiscount, line_discounts_guessed
from marketplace_site.pricing import PricedLine


class SaleRejected(ValueError):
    """The purchase cannot go into the ledger; the message says why."""


def sales_record(events: Sequence[Event]) -> None:
    """Add each line of the purchases to the sales ledger and its book's day.

    Runs inside the inbox transaction, so a redelivered event adds nothing,
    and a failure part-way through leaves no line behind. The whole batch
    goes in with two statements: the lines, then every book-day's totals.
    The contract has checked each purchase's lines and amounts; the
    customers and books must be the shop's own.
    """
    purchase_customers(events)
    lines: list[SaleLine] = []
    days: dict[tuple[int, date], dict[str, Any]] = {}
    for event in events:
        payload: events_pb2.PurchaseCompleted = event.payload
        day = timezone.localdate(event.occurred_at)
        for sale in _sale_lines(payload, event.occurred_at):
            lines.append(sale)
            totals = days.setdefault(
                (sale.book_id, day),
                {
                    "category_code": sale.category_code,
                    "units": 0,
                    "revenue": Decimal(0),
                    "orders": 0,
                },
            )
            totals["units"] += sale.quantity
            totals["revenue"] += sale.revenue
            totals["orders"] += 1
    try:
        SaleLine.objects.bulk_create(lines)
    except IntegrityError as exc:
        orders = ", ".join(str(event.payload.order_id) for event in events)
        raise SaleRejected(
            f"order {orders} is already in the sales ledger, or lists a book twice"
        ) from exc
    counters_add(DailySales, key=("book_id", "day"), rows=days, add=("units", "revenue", "orders"))


def _sale_lines(payload: events_pb2.PurchaseCompleted, sold_at: datetime) -> list[SaleLine]:
    return [
        SaleLine(
            order_id=payload.order_id,
            user_id=payload.user_id,
            book_id=line.book_id,
            category_code=line.category,
            quantity=line.quantity,
            revenue=Decimal(line.line_total),
            promotion_discount=discount.promotion,
            voucher_discount=discount.voucher,
            sold_at=sold_at,
        )
        for line, discount in zip(payload.lines, _line_discounts(payload), strict=True)
    ]


def _line_discounts(payload: events_pb2.PurchaseCompleted) -> list[LineDiscount]:
    if carries_discount_shares(payload):
        return [
            LineDiscount(Decimal(line.promotion_discount), Decimal(line.voucher_discount))
            for line in payload.lines
        ]
    # Sent before purchases carried their shares: the order's own amounts.
    subtotal, discount = Decimal(payload.subtotal), Decimal(payload.discount)
    return line_discounts_guessed(
        [
            PricedLine(
                book_id=line.book_id,
                title=line.title,
                category_code=line.category,
                unit_price=Decimal(line.unit_price),
                quantity=line.quantity,
            )
            for line in payload.lines
        ],
        promotion_discount=discount,
        voucher_discount=subtotal - discount - Decimal(payload.total),
    )
