"""Cart changes and checkout."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F

from marketplace_site.catalog.models import Book
from marketplace_site.orders.cart import MAX_QUANTITY, Cart
from marketplace_site.orders.events import promotion_applied, purchase_completed
from marketplace_site.orders.models import Order, OrderLine
from marketplace_site.orders.pricing import quote, with_voucher
from marketplace_site.orders.selectors import priced_lines
from marketplace_site.outbox.services import outbox_record
from marketplace_site.promotions.models import Promotion, Redemption
from marketplace_site.promotions.selectors import promotion_rule, promotions_available
from marketplace_site.vouchers.selectors import VoucherInvalid, voucher_usable
from marketplace_site.vouchers.services import voucher_redeem


class OrderError(ValueError):
    """The cart or checkout request cannot be honoured; the message is for the customer."""


class VoucherRefused(OrderError):
    """The voucher code given at checkout cannot be used; nothing else was wrong yet."""


def cart_set(*, cart: Cart, book: Book, quantity: int) -> None:
    """Set a line's quantity (0 removes it), within stock and the per-line cap."""
    if quantity < 0 or quantity > MAX_QUANTITY:
        raise OrderError(f"Quantity must be between 0 and {MAX_QUANTITY}.")
    if quantity > book.stock:
        raise OrderError(f"Only {book.stock} left of “{book.title}”.")
    cart.set(book.pk, quantity)


def cart_add(*, cart: Cart, book: Book, quantity: int) -> None:
    if quantity < 1:
        raise OrderError("Quantity must be at least 1.")
    cart_set(cart=cart, book=book, quantity=cart.quantity(book.pk) + quantity)


def order_checkout(
    *,
    user: AbstractBaseUser,
    items: Mapping[int, int],
    expected_total: Decimal | None = None,
    correlation_id: str = "",
    voucher_code: str = "",
    checkout_key: uuid.UUID | None = None,
) -> Order:
    """Place the order in one transaction: lines priced from the catalog, stock
    taken, the promotion and the voucher redeemed, events recorded. Any failure
    changes nothing.

    With a ``checkout_key`` (the cart page's), an order already placed with it
    is returned instead: the same page posted twice places one order, even
    when the two posts run at once.
    """
    if checkout_key is not None:
        placed = _placed_with(user, checkout_key)
        if placed is not None:
            return placed
    if not items:
        raise OrderError("Your cart is empty.")
    if any(q < 1 or q > MAX_QUANTITY for q in items.values()):
        raise OrderError(f"Quantities must be between 1 and {MAX_QUANTITY}.")
    try:
        with transaction.atomic():
            return _place(user, items, expected_total, correlation_id, voucher_code, checkout_key)
    except (OrderError, VoucherInvalid, IntegrityError) as exc:
        # The same page's other post may have placed it meanwhile, taking the
        # stock, the voucher or the key this one needed: that order it is.
        placed = _placed_with(user, checkout_key) if checkout_key is not None else None
        if placed is not None:
            return placed
        if isinstance(exc, VoucherInvalid):
            raise VoucherRefused(str(exc)) from None
        raise


def _placed_with(user: AbstractBaseUser, checkout_key: uuid.UUID) -> Order | None:
    return Order.objects.filter(user=user, checkout_key=checkout_key).first()


def _place(
    user: AbstractBaseUser,
    items: Mapping[int, int],
    expected_total: Decimal | None,
    correlation_id: str,
    voucher_code: str,
    checkout_key: uuid.UUID | None,
) -> Order:
    # Locked in id order, so concurrent checkouts cannot deadlock on books.
    books = {
        b.pk: b
        for b in Book.objects.select_for_update(of=("self",))
        .select_related("category")
        .filter(pk__in=list(items), active=True)
        .order_by("pk")
    }
    gone = [book_id for book_id in items if book_id not in books]
    if gone:
        raise OrderError("A book in your cart is no longer sold; it has been removed.")
    for book_id, quantity in items.items():
        if books[book_id].stock < quantity:
            book = books[book_id]
            raise OrderError(f"Only {book.stock} left of “{book.title}”.")

    # Promotions with a global limit are counted by one checkout at a time.
    # The per-customer limit needs no lock: the redemption takes the next
    # sequence after the uses counted here, and the ledger's unique
    # (promotion, user, sequence) refuses it if another checkout took that
    # use meanwhile, committed or not.
    list(
        Promotion.objects.select_for_update()
        .filter(active=True, global_limit__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    promotions = {p.pk: p for p in promotions_available(user=user)}
    the_quote = quote(priced_lines(books, items), [promotion_rule(p) for p in promotions.values()])
    voucher = None
    if voucher_code.strip():
        voucher = voucher_usable(user=user, code=voucher_code, lock=True)
        the_quote = with_voucher(the_quote, voucher.percent_off)
    if expected_total is not None and the_quote.total != expected_total:
        raise OrderError(
            "Your cart's total changed since you saw it; please review it and check out again."
        )

    order = Order.objects.create(
        user=user,
        currency=settings.SHOP_CURRENCY,
        subtotal=the_quote.subtotal,
        discount=the_quote.discount,
        total=the_quote.total,
        promotion_id=the_quote.promotion.promotion_id if the_quote.promotion else None,
        voucher=voucher,
        voucher_discount=the_quote.voucher_discount,
        correlation_id=correlation_id,
        checkout_key=checkout_key,
    )
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            book_id=line.book_id,
            title=line.title,
            unit_price=line.unit_price,
            quantity=line.quantity,
            line_total=line.line_total,
        )
        for line in the_quote.lines
    )
    for line in the_quote.lines:
        taken = Book.objects.filter(pk=line.book_id, stock__gte=line.quantity).update(
            stock=F("stock") - line.quantity
        )
        if not taken:
            raise OrderError(f"“{line.title}” just sold out.")
    if voucher is not None:
        voucher_redeem(voucher=voucher, order=order)

    outbox_record(payload=purchase_completed(order, the_quote), correlation_id=correlation_id)
    if the_quote.promotion is not None:
        promotion = promotions[the_quote.promotion.promotion_id]
        try:
            # A savepoint, so only the ledger's unique key is read as the race
            # below; any other integrity error is a bug and surfaces as one.
            with transaction.atomic():
                Redemption.objects.create(
                    promotion=promotion,
                    user=user,
                    # Counted again here, a use committed since would be missed.
                    sequence=promotion.customer_uses + 1,
                    order=order,
                    discount=the_quote.discount,
                )
        except IntegrityError as exc:
            # Another checkout of this customer took the promotion first.
            raise OrderError(
                "This promotion was just used on another of your orders; "
                "please review your cart's new total."
            ) from exc
        outbox_record(payload=promotion_applied(order, the_quote), correlation_id=correlation_id)
    return order
