"""Cart changes and checkout."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest

from marketplace_site.catalog.models import Book
from marketplace_site.orders.cart import MAX_QUANTITY, quantity_allowed
from marketplace_site.orders.events import (
    order_status_changed,
    promotion_applied,
    purchase_completed,
)
from marketplace_site.orders.models import Cart, CartLine, Order, OrderLine
from marketplace_site.orders.selectors import cart_contents, priced_lines
from marketplace_site.outbox.services import outbox_record
from marketplace_site.pricing import PricedLine, Quote, quote, with_voucher
from marketplace_site.promotions.models import Promotion, Redemption
from marketplace_site.promotions.selectors import promotion_rule, promotions_available
from marketplace_site.vouchers.models import Voucher
from marketplace_site.vouchers.selectors import VoucherInvalid, voucher_usable
from marketplace_site.vouchers.services import voucher_redeem


class OrderError(ValueError):
    """The cart or checkout request cannot be honoured; the message is for the customer."""


class VoucherRefused(OrderError):
    """The voucher code given at checkout cannot be used; nothing else was wrong yet."""


def cart_set(*, cart: Cart, book: Book, quantity: int) -> None:
    """Set a line's quantity (0 removes it), within stock and the per-line cap."""
    _cart_line_change(cart, book, lambda in_cart: quantity, adding=False)


def cart_add(*, cart: Cart, book: Book, quantity: int) -> None:
    if quantity < 1:
        raise OrderError("Add at least one copy.")
    _cart_line_change(cart, book, lambda in_cart: in_cart + quantity, adding=True)


def cart_remove(*, cart: Cart, book_id: int) -> None:
    with _cart_changing(cart):
        CartLine.objects.filter(cart=cart, book_id=book_id).delete()


@contextmanager
def _cart_changing(cart: Cart, *, above: int = 0) -> Iterator[None]:
    """A transaction that changes the cart, its version one up first (and past
    ``above``): that UPDATE takes the cart's row lock, so the visitor's other
    requests wait, then see this change instead of writing over it."""
    with transaction.atomic():
        bumped = Cart.objects.filter(pk=cart.pk).update(
            version=Greatest(F("version"), Value(above)) + 1
        )
        if not bumped:
            # Merged into the customer's own at a login meanwhile (another tab).
            raise OrderError("Your cart moved to your account as you logged in; please try again.")
        yield


def cart_merge(*, user: AbstractBaseUser, cart: Cart) -> None:
    """A visitor's cart joins the customer's at login. It becomes theirs if
    they have none; otherwise its books are added to their cart (a book in
    both keeps the larger quantity: the same wish, made twice) and it is
    deleted, so a second login of the same session finds nothing to add.

    Two sessions logging in at once each add their own cart: both lock the
    customer's cart, so one adds after the other. The customer's cart's new
    version is past both carts' old ones: no page of either, posted later,
    can buy what it did not show.
    """
    with transaction.atomic():
        visitor = Cart.objects.select_for_update().filter(pk=cart.pk, user__isnull=True).first()
        if visitor is None:
            return
        try:
            # A savepoint: another login of this customer may make their cart first.
            with transaction.atomic():
                if not Cart.objects.filter(user=user).exists():
                    Cart.objects.filter(pk=visitor.pk).update(user=user, session_key=None)
                    return
        except IntegrityError:
            pass
        owned = Cart.objects.get(user=user)
        with _cart_changing(owned, above=visitor.version):
            have = dict(CartLine.objects.filter(cart=owned).values_list("book_id", "quantity"))
            brought = dict(CartLine.objects.filter(cart=visitor).values_list("book_id", "quantity"))
            CartLine.objects.bulk_create(
                CartLine(cart=owned, book_id=book_id, quantity=quantity)
                for book_id, quantity in brought.items()
                if book_id not in have
            )
            for book_id, quantity in brought.items():
                if quantity > have.get(book_id, quantity):
                    CartLine.objects.filter(cart=owned, book_id=book_id).update(quantity=quantity)
            visitor.delete()


def _cart_line_change(
    cart: Cart, book: Book, quantity_from: Callable[[int], int], *, adding: bool
) -> None:
    with _cart_changing(cart):
        line = CartLine.objects.filter(cart=cart, book=book).first()
        in_cart = line.quantity if line else 0
        quantity = quantity_from(in_cart)
        if quantity < 0:
            raise OrderError("Enter 0 to remove the book.")
        if quantity > quantity_allowed(book.stock):
            raise OrderError(_too_many(book, in_cart if adding else 0))
        if quantity == 0:
            CartLine.objects.filter(cart=cart, book=book).delete()
        elif line is None:
            CartLine.objects.create(cart=cart, book=book, quantity=quantity)
        else:
            line.quantity = quantity
            line.save(update_fields=["quantity"])


def _too_many(book: Book, in_cart: int) -> str:
    """Why no more copies fit, and how many still do."""
    allowed = quantity_allowed(book.stock)
    if allowed == 0:
        return f"“{book.title}” is sold out."
    if book.stock < MAX_QUANTITY:
        limit = f"{book.stock} in stock"
    else:
        limit = f"at most {MAX_QUANTITY} copies in one order"
    if in_cart:
        more = allowed - in_cart
        can = f"you can add {more} more" if more > 0 else "you cannot add more"
        return f"Your cart has {in_cart} of “{book.title}” already ({limit}): {can}."
    return f"You can buy at most {allowed} of “{book.title}” ({limit})."


def _cart_drop_unsold(cart: Cart) -> None:
    unsold = CartLine.objects.filter(cart=cart, book__active=False)
    if unsold.exists():
        with _cart_changing(cart):
            unsold.delete()


@dataclass(frozen=True)
class CheckedOut:
    order: Order
    # Placed by an earlier post of another page of the same cart (another tab).
    by_another_page: bool


def cart_checkout(
    *,
    user: AbstractBaseUser,
    cart: Cart | None,
    cart_version: int | None = None,
    expected_total: Decimal | None = None,
    correlation_id: str = "",
    voucher_code: str = "",
    checkout_key: uuid.UUID | None = None,
) -> CheckedOut:
    """Buy what the cart holds, once: the order is placed and the cart emptied
    in one transaction that holds the cart's row lock. Of the same cart posted
    from several pages at once, the first post buys it; the others, and any
    later post of a page that bought it, get that order back.

    ``cart_version`` is the version the posted page showed: an older page is
    refused. A page that already bought its cart, posted when the cart holds
    something again (the back button, a restored tab), is refused too: it
    neither buys nor empties a cart it did not show. Books no longer sold
    leave the cart when a checkout fails.
    """
    if cart is None:
        raise OrderError("Your cart is empty.")
    try:
        with transaction.atomic():
            cart = Cart.objects.select_for_update().get(pk=cart.pk)
            items = cart_contents(cart=cart).items
            placed = _placed_from(user, cart, cart_version, checkout_key)
            if placed is not None:
                if items:
                    raise OrderError(
                        f"Order #{placed.pk} was already placed from this cart page, and your "
                        "cart has changed since: please review it and place the order again."
                    )
                return CheckedOut(order=placed, by_another_page=placed.checkout_key != checkout_key)
            if cart_version is not None and cart_version != cart.version:
                raise OrderError(
                    "Your cart changed since this page showed it; "
                    "please review it and check out again."
                )
            order = order_checkout(
                user=user,
                items=items,
                expected_total=expected_total,
                correlation_id=correlation_id,
                voucher_code=voucher_code,
                checkout_key=checkout_key,
                cart=cart,
            )
            with _cart_changing(cart):
                CartLine.objects.filter(cart=cart).delete()
    except OrderError:
        _cart_drop_unsold(cart)
        raise
    return CheckedOut(order=order, by_another_page=False)


def _placed_from(
    user: AbstractBaseUser, cart: Cart, cart_version: int | None, checkout_key: uuid.UUID | None
) -> Order | None:
    """The order this page, or another page of the same cart version, placed."""
    placed = _placed_with(user, checkout_key) if checkout_key is not None else None
    if placed is None and cart_version is not None:
        placed = Order.objects.filter(user=user, cart=cart, cart_version=cart_version).first()
    return placed


def order_checkout(
    *,
    user: AbstractBaseUser,
    items: Mapping[int, int],
    expected_total: Decimal | None = None,
    correlation_id: str = "",
    voucher_code: str = "",
    checkout_key: uuid.UUID | None = None,
    cart: Cart | None = None,
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
            return _place(
                user, items, expected_total, correlation_id, voucher_code, checkout_key, cart
            )
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
    cart: Cart | None,
) -> Order:
    books = _books_in_stock_locked(items)
    promotions = _promotions_usable_locked(user)
    the_quote = quote(priced_lines(books, items), [promotion_rule(p) for p in promotions.values()])
    voucher = None
    if voucher_code.strip():
        voucher = voucher_usable(user=user, code=voucher_code, lock=True)
        the_quote = with_voucher(the_quote, voucher.percent_off)
    if expected_total is not None and the_quote.total != expected_total:
        raise OrderError(
            "Your cart's total changed since you saw it; please review it and check out again."
        )
    order = _order_create(user, the_quote, voucher, correlation_id, checkout_key, cart)
    _stock_take(the_quote.lines)
    if voucher is not None:
        voucher_redeem(voucher=voucher, order_id=order.pk)
    outbox_record(payload=purchase_completed(order, the_quote), correlation_id=correlation_id)
    if the_quote.promotion is not None:
        promotion = promotions[the_quote.promotion.promotion_id]
        _promotion_redeem(promotion, user, order, the_quote.discount)
        outbox_record(payload=promotion_applied(order, the_quote), correlation_id=correlation_id)
    return order


def _books_in_stock_locked(items: Mapping[int, int]) -> dict[int, Book]:
    """The cart's books, row-locked; OrderError if one is no longer sold or short of stock."""
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
            raise OrderError(
                f"Only {book.stock} left of “{book.title}”: "
                "lower its quantity in your cart, then place the order."
            )
    return books


def _promotions_usable_locked(user: AbstractBaseUser) -> dict[int, Promotion]:
    """The promotions the customer can use, by id, the globally limited ones locked."""
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
    return {p.pk: p for p in promotions_available(user=user)}


def _order_create(
    user: AbstractBaseUser,
    the_quote: Quote,
    voucher: Voucher | None,
    correlation_id: str,
    checkout_key: uuid.UUID | None,
    cart: Cart | None,
) -> Order:
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
        cart=cart,
        cart_version=cart.version if cart is not None else None,
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
    return order


def _stock_take(lines: Sequence[PricedLine]) -> None:
    for line in lines:
        taken = Book.objects.filter(pk=line.book_id, stock__gte=line.quantity).update(
            stock=F("stock") - line.quantity
        )
        if not taken:
            raise OrderError(f"“{line.title}” just sold out.")


def _promotion_redeem(
    promotion: Promotion, user: AbstractBaseUser, order: Order, discount: Decimal
) -> None:
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
                discount=discount,
            )
    except IntegrityError as exc:
        # Another checkout of this customer took the promotion first.
        raise OrderError(
            "This promotion was just used on another of your orders; "
            "please review your cart's new total."
        ) from exc


def order_status_change(*, order_id: int, status: str) -> Order:
    """Move an order on (placed, shipped, delivered: forward only, a step may
    be skipped) and record OrderStatusChanged with it, in one transaction;
    the worker e-mails the customer. Raises OrderError for a status that is
    not ahead of the order's, read under its row lock: of two staff moving
    it at once, the second is refused rather than e-mailing twice."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        previous = order.status
        if status not in Order.statuses_after(previous):
            raise OrderError(
                f"Order #{order.pk} is {order.get_status_display().lower()}: it cannot become"
                f" {Order.Status(status).label.lower()}."
            )
        order.status = status
        order.save(update_fields=["status"])
        outbox_record(payload=order_status_changed(order, previous=previous))
    return order
