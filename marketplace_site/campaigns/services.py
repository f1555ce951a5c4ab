"""The sales ledgers, written by the worker from PurchaseCompleted events."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from bookstore.events.v1 import events_pb2
from events.contracts import Event
from marketplace_site.campaigns.models import DailySales, SaleLine


class SaleRejected(ValueError):
    """The purchase cannot go into the ledger; the message says why."""


def sales_record(event: Event) -> None:
    """Add each line of a purchase to the sales ledger and its book's day.

    Runs inside the inbox transaction, so a redelivered event adds nothing,
    and a failure part-way through leaves no line behind.
    """
    payload: events_pb2.PurchaseCompleted = event.payload
    sold_at = event.occurred_at
    day = timezone.localdate(sold_at)
    lines = [_sale_line(payload, line, sold_at) for line in payload.lines]
    try:
        SaleLine.objects.bulk_create(lines)
    except IntegrityError as exc:
        raise SaleRejected(
            f"order {payload.order_id} is already in the sales ledger, or lists a book twice"
        ) from exc
    for line in lines:
        _daily_sales_add(line, day)


def _sale_line(
    payload: events_pb2.PurchaseCompleted, line: events_pb2.PurchaseLine, sold_at: datetime
) -> SaleLine:
    if line.quantity < 1:
        raise SaleRejected(
            f"order {payload.order_id}: book {line.book_id} has quantity {line.quantity}"
        )
    try:
        revenue = Decimal(line.line_total)
    except InvalidOperation:
        raise SaleRejected(
            f"order {payload.order_id}: line_total {line.line_total!r} is not a decimal"
        ) from None
    if not revenue.is_finite() or revenue < 0:
        raise SaleRejected(f"order {payload.order_id}: line_total {line.line_total!r} is invalid")
    return SaleLine(
        order_id=payload.order_id,
        user_id=payload.user_id,
        book_id=line.book_id,
        category_code=line.category,
        quantity=line.quantity,
        revenue=revenue,
        sold_at=sold_at,
    )


def _daily_sales_add(line: SaleLine, day: date) -> None:
    # get_or_create tolerates a concurrent worker creating the row first; the
    # F() update then adds to whatever that worker committed.
    row, _ = DailySales.objects.get_or_create(
        book_id=line.book_id, day=day, defaults={"category_code": line.category_code}
    )
    DailySales.objects.filter(pk=row.pk).update(
        units=F("units") + line.quantity,
        revenue=F("revenue") + line.revenue,
        orders=F("orders") + 1,
    )
