"""Valid event payloads for tests, with any field overridden: the contract
(events.contracts) refuses an incomplete one before a handler sees it."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from bookstore.events.v1 import events_pb2
from events.contracts import Event, book_category, unwrap, wrap

# (book_id, quantity, unit price) or (book_id, quantity, unit price, category)
Line = tuple[int, int, str] | tuple[int, int, str, int]


def book_payload(**fields: Any) -> events_pb2.BookUpserted:
    defaults: dict[str, Any] = {
        "book_id": 7,
        "title": "Dune",
        "category": 1,
        "price": "9.99",
        "currency": "USD",
    }
    return events_pb2.BookUpserted(**(defaults | fields))


def purchase_payload(
    *,
    lines: Iterable[Line] = ((5, 2, "10.00"),),
    shares: Iterable[tuple[str, str]] | None = None,
    **fields: Any,
):
    """A PurchaseCompleted whose totals add up, unless ``fields`` say otherwise.
    ``shares``: each line's (promotion_discount, voucher_discount); none, as
    producers sent before lines carried them, unless given."""
    items = [
        events_pb2.PurchaseLine(
            book_id=line[0],
            category=book_category(line[3] if len(line) == 4 else 0),
            quantity=line[1],
            unit_price=line[2],
            line_total=f"{line[1] * Decimal(line[2]):.2f}",
        )
        for line in lines
    ]
    for item, (promotion_share, voucher_share) in zip(items, shares or (), strict=False):
        item.promotion_discount, item.voucher_discount = promotion_share, voucher_share
    subtotal = f"{sum((Decimal(i.line_total) for i in items), Decimal(0)):.2f}"
    defaults: dict[str, Any] = {
        "order_id": 42,
        "user_id": 9,
        "lines": items,
        "subtotal": subtotal,
        "discount": "0.00",
        "total": subtotal,
        "currency": "USD",
    }
    return events_pb2.PurchaseCompleted(**(defaults | fields))


def promotion_payload(**fields: Any) -> events_pb2.PromotionApplied:
    defaults: dict[str, Any] = {
        "promotion_id": 3,
        "order_id": 42,
        "user_id": 9,
        "discount": "4.50",
        "currency": "USD",
    }
    return events_pb2.PromotionApplied(**(defaults | fields))


def status_payload(**fields: Any) -> events_pb2.OrderStatusChanged:
    defaults = {
        "order_id": 42,
        "user_id": 9,
        "status": events_pb2.ORDER_STATUS_SHIPPED,
        "previous_status": events_pb2.ORDER_STATUS_PLACED,
    }
    return events_pb2.OrderStatusChanged(**(defaults | fields))


def republished(event: Event) -> Event:
    """The same fact published again under a new event id (a buggy or replaying producer)."""
    body = wrap(event.payload, correlation_id="republished", producer="tests").SerializeToString()
    again = unwrap(body)
    assert again.event_id != event.event_id
    return again
