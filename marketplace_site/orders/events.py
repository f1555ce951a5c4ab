"""The order's event payloads."""

from __future__ import annotations

from bookstore.events.v1 import events_pb2
from marketplace_site.orders.discount_shares import line_discounts
from marketplace_site.orders.models import Order
from marketplace_site.pricing import Quote


def purchase_completed(order: Order, quote: Quote) -> events_pb2.PurchaseCompleted:
    discounts = line_discounts(
        quote.lines,
        free_book_id=quote.free_book_id,
        promotion_discount=quote.discount,
        voucher_discount=quote.voucher_discount,
    )
    return events_pb2.PurchaseCompleted(
        order_id=order.pk,
        user_id=order.user_id,
        lines=[
            events_pb2.PurchaseLine(
                book_id=line.book_id,
                title=line.title,
                category=line.category_code,
                quantity=line.quantity,
                unit_price=str(line.unit_price),
                line_total=str(line.line_total),
                promotion_discount=str(discount.promotion),
                voucher_discount=str(discount.voucher),
            )
            for line, discount in zip(quote.lines, discounts, strict=True)
        ],
        subtotal=str(order.subtotal),
        discount=str(order.discount),
        total=str(order.total),
        currency=order.currency,
        promotion_id=order.promotion_id or 0,
        voucher_code=order.voucher.code if order.voucher_id else "",
    )


def promotion_applied(order: Order, quote: Quote) -> events_pb2.PromotionApplied:
    if quote.promotion is None or quote.free_book_id is None:
        raise ValueError("the quote applies no promotion")
    return events_pb2.PromotionApplied(
        promotion_id=quote.promotion.promotion_id,
        promotion_name=quote.promotion.name,
        order_id=order.pk,
        user_id=order.user_id,
        discount=str(order.discount),
        currency=order.currency,
        free_book_ids=[quote.free_book_id],
    )


# The model's statuses in the contract's words.
STATUS_CODES = {
    Order.Status.PLACED: events_pb2.ORDER_STATUS_PLACED,
    Order.Status.SHIPPED: events_pb2.ORDER_STATUS_SHIPPED,
    Order.Status.DELIVERED: events_pb2.ORDER_STATUS_DELIVERED,
}


def order_status_changed(order: Order, *, previous: str) -> events_pb2.OrderStatusChanged:
    return events_pb2.OrderStatusChanged(
        order_id=order.pk,
        user_id=order.user_id,
        status=STATUS_CODES[order.status],
        previous_status=STATUS_CODES[previous],
    )
