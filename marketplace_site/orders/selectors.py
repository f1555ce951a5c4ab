"""Reads for the cart and the order history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from marketplace_site.catalog.models import Book
from marketplace_site.money_sums import cents
from marketplace_site.orders.models import Cart, CartLine, Order
from marketplace_site.pricing import PricedLine, Quote, quote, with_voucher
from marketplace_site.promotions.selectors import (
    promotion_rule,
    promotions_available,
    promotions_unusable,
)
from marketplace_site.promotions.wording import PromotionNote, promotion_notes
from marketplace_site.shop_days import day_starts_at


@dataclass(frozen=True)
class CartContents:
    version: int
    items: dict[int, int]  # book id -> quantity


def cart_contents(*, cart: Cart | None) -> CartContents:
    """What the cart holds. ``cart.version`` was read before its lines are
    here, so the lines are at least that new: a page posting the version back
    never bought an older cart than it showed."""
    if cart is None:
        return CartContents(version=0, items={})
    items = dict(CartLine.objects.filter(cart=cart).values_list("book_id", "quantity"))
    return CartContents(version=cart.version, items=items)


def cart_quantity_of(*, cart: Cart | None, book_id: int) -> int:
    """How many copies of the book the cart holds."""
    if cart is None:
        return 0
    line = CartLine.objects.filter(cart=cart, book_id=book_id).values_list("quantity", flat=True)
    return line.first() or 0


def cart_shortages(*, items: Mapping[int, int]) -> dict[int, int]:
    """The cart's books on sale with fewer copies in stock than it holds: book id -> stock."""
    stock = Book.objects.filter(pk__in=list(items), active=True).values_list("pk", "stock")
    return {book_id: left for book_id, left in stock if left < items[book_id]}


def cart_count(*, cart: Cart | None) -> int:
    """The number of books in the cart."""
    if cart is None:
        return 0
    return CartLine.objects.filter(cart=cart).aggregate(n=Sum("quantity"))["n"] or 0


def priced_lines(books: Mapping[int, Book], items: Mapping[int, int]) -> list[PricedLine]:
    return [
        PricedLine(
            book_id=book_id,
            title=books[book_id].title,
            category_code=books[book_id].category.code,
            unit_price=books[book_id].price,
            quantity=quantity,
        )
        for book_id, quantity in sorted(items.items())
        if book_id in books
    ]


def cart_quote(
    *,
    user: AbstractBaseUser | AnonymousUser,
    items: Mapping[int, int],
    voucher_percent_off: Decimal | None = None,
) -> Quote:
    """What the cart costs now, with the best promotion the customer can use
    and, if given, a voucher's percentage off."""
    books = Book.objects.select_related("category").filter(active=True).in_bulk(list(items))
    rules = [promotion_rule(p) for p in promotions_available(user=user)]
    priced = quote(priced_lines(books, items), rules)
    return priced if voucher_percent_off is None else with_voucher(priced, voucher_percent_off)


def cart_promotion_notes(
    *, user: AbstractBaseUser | AnonymousUser, priced: Quote
) -> list[PromotionNote]:
    """Why each promotion the customer may know of does not apply to the
    priced cart, or what it would take (nothing for an empty cart)."""
    if not priced.lines:
        return []
    now = timezone.now()
    available = promotions_available(user=user, now=now)
    return promotion_notes(
        priced.lines,
        available=[promotion_rule(p) for p in available],
        applied=priced.promotion,
        unusable=[
            (promotion_rule(p), why, p.per_customer_limit, timezone.localdate(p.ends_at))
            for p, why in promotions_unusable(available=available, now=now)
        ],
    )


def order_list(*, user: AbstractBaseUser) -> QuerySet[Order]:
    return Order.objects.filter(user=user).prefetch_related("lines").select_related("promotion")


def order_get(*, user: AbstractBaseUser, order_id: int) -> Order | None:
    return order_list(user=user).filter(pk=order_id).first()


@dataclass(frozen=True, slots=True)
class Purchases:
    book_ids: frozenset[int]
    # The customer's latest order (0 and None without one): what they bought
    # changes with it.
    latest_order_id: int = 0
    latest_order_at: datetime | None = None


def customer_purchases(*, user: AbstractBaseUser | AnonymousUser) -> Purchases:
    """The books the customer bought and their latest order, in one query."""
    if not user.is_authenticated:
        return Purchases(frozenset())
    rows = list(
        Order.objects.filter(user=user)
        .order_by("-id")
        .values_list("id", "created_at", "lines__book_id")
    )
    if not rows:
        return Purchases(frozenset())
    latest_id, latest_at, _ = rows[0]
    bought = frozenset(book_id for _, _, book_id in rows if book_id is not None)
    return Purchases(bought, latest_id, latest_at)


@dataclass(frozen=True, slots=True)
class DaySales:
    orders: int
    # What customers paid, and the promotion and voucher discounts it is net of.
    revenue: Decimal
    discounts: Decimal


def sales_of_the_day(*, day: date) -> DaySales:
    """The orders placed on ``day`` (in TIME_ZONE), read from the orders themselves."""
    totals = Order.objects.filter(
        created_at__gte=day_starts_at(day), created_at__lt=day_starts_at(day + timedelta(days=1))
    ).aggregate(
        orders=Count("id"),
        revenue=Sum("total"),
        discount=Sum("discount"),
        voucher_discount=Sum("voucher_discount"),
    )
    return DaySales(
        orders=totals["orders"],
        revenue=cents(totals["revenue"]),
        discounts=cents(totals["discount"]) + cents(totals["voucher_discount"]),
    )
