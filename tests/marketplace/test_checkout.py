"""order_checkout: prices, stock, promotions and their limits, events, atomicity."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bookstore.events.v1 import events_pb2
from events.contracts import PROMOTION_APPLIED, PURCHASE_COMPLETED, unwrap
from marketplace_site.catalog.models import Book
from marketplace_site.orders.models import Cart, CartLine, Order, OrderLine
from marketplace_site.orders.services import OrderError, cart_checkout, order_checkout
from marketplace_site.outbox.models import OutboxMessage
from marketplace_site.outbox.services import outbox_record
from marketplace_site.promotions.models import Redemption

pytestmark = pytest.mark.django_db


def events() -> list:
    return [unwrap(bytes(row.envelope)) for row in OutboxMessage.objects.order_by("id")]


def test_an_order_is_priced_from_the_catalog_and_takes_stock(customer, make_book):
    dune, emma = make_book("12.50", stock=5), make_book("8.00", stock=1)
    order = order_checkout(user=customer, items={dune.pk: 2, emma.pk: 1}, correlation_id="c-1")

    assert (order.subtotal, order.discount, order.total) == (
        Decimal("33.00"),
        Decimal("0.00"),
        Decimal("33.00"),
    )
    assert order.promotion is None
    lines = {line.book_id: line for line in order.lines.all()}
    assert (lines[dune.pk].unit_price, lines[dune.pk].quantity) == (Decimal("12.50"), 2)
    assert lines[dune.pk].line_total == Decimal("25.00")
    dune.refresh_from_db()
    emma.refresh_from_db()
    assert (dune.stock, emma.stock) == (3, 0)


def test_the_purchase_is_recorded_as_an_event_in_the_outbox(customer, make_book):
    book = make_book("9.99", category="fantasy")
    order = order_checkout(user=customer, items={book.pk: 2}, correlation_id="req-7")
    [event] = events()
    assert event.event_type == PURCHASE_COMPLETED
    assert event.correlation_id == "req-7"
    assert event.producer == "marketplace"
    assert event.payload == events_pb2.PurchaseCompleted(
        order_id=order.pk,
        user_id=customer.pk,
        lines=[
            events_pb2.PurchaseLine(
                book_id=book.pk,
                title=book.title,
                category=3,
                quantity=2,
                unit_price="9.99",
                line_total="19.98",
                promotion_discount="0.00",
                voucher_discount="0.00",
            )
        ],
        subtotal="19.98",
        discount="0.00",
        total="19.98",
        currency="USD",
    )


def test_buy_two_get_the_cheapest_free(customer, make_book, make_promotion):
    promotion = make_promotion()
    a, b, c = make_book("10.00"), make_book("15.00"), make_book("6.00")
    order = order_checkout(user=customer, items={a.pk: 1, b.pk: 1, c.pk: 1})

    assert (order.subtotal, order.discount, order.total) == (
        Decimal("31.00"),
        Decimal("6.00"),
        Decimal("25.00"),
    )
    assert order.promotion == promotion
    redemption = Redemption.objects.get()
    assert (redemption.user, redemption.order, redemption.discount) == (
        customer,
        order,
        Decimal("6.00"),
    )
    purchase, applied = events()
    assert purchase.event_type == PURCHASE_COMPLETED
    assert purchase.payload.promotion_id == promotion.pk
    assert applied.event_type == PROMOTION_APPLIED
    assert applied.payload.discount == "6.00"
    assert list(applied.payload.free_book_ids) == [c.pk]


def test_the_promotion_applies_once_per_customer(customer, make_user, make_book, make_promotion):
    make_promotion()
    books = [make_book("10.00") for _ in range(3)]
    items = {b.pk: 1 for b in books}
    assert order_checkout(user=customer, items=items).discount == Decimal("10.00")
    second = order_checkout(user=customer, items=items)
    assert (second.discount, second.promotion) == (Decimal("0.00"), None)
    assert order_checkout(user=make_user("bob"), items=items).discount == Decimal("10.00")
    assert Redemption.objects.count() == 2


def test_a_higher_per_customer_limit_allows_more_uses(customer, make_book, make_promotion):
    make_promotion(per_customer_limit=2)
    items = {make_book("10.00").pk: 3}
    discounts = [order_checkout(user=customer, items=items).discount for _ in range(3)]
    assert discounts == [Decimal("10.00"), Decimal("10.00"), Decimal("0.00")]
    assert list(Redemption.objects.order_by("sequence").values_list("sequence", flat=True)) == [
        1,
        2,
    ]


def test_the_global_limit_ends_the_promotion_for_everyone(make_user, make_book, make_promotion):
    make_promotion(global_limit=2)
    items = {make_book("10.00", stock=50).pk: 3}
    discounts = [order_checkout(user=make_user(f"u{i}"), items=items).discount for i in range(3)]
    assert discounts == [Decimal("10.00"), Decimal("10.00"), Decimal("0.00")]


@pytest.mark.parametrize(
    ("starts", "ends", "active"),
    [
        (timedelta(days=1), timedelta(days=5), True),  # not started yet
        (timedelta(days=-5), timedelta(days=-1), True),  # over
        (timedelta(days=-1), timedelta(days=5), False),  # switched off
    ],
)
def test_promotions_apply_only_while_running(
    customer, make_book, make_promotion, starts, ends, active
):
    now = timezone.now()
    make_promotion(starts_at=now + starts, ends_at=now + ends, active=active)
    order = order_checkout(user=customer, items={make_book().pk: 3})
    assert order.discount == 0


def test_a_category_promotion_ignores_other_books(customer, make_book, make_promotion, categories):
    make_promotion(category=categories["science-fiction"])
    sf = make_book("20.00", category="science-fiction")
    mystery = make_book("5.00", category="mystery")
    assert order_checkout(user=customer, items={sf.pk: 2, mystery.pk: 1}).discount == 0
    order = order_checkout(user=customer, items={sf.pk: 3, mystery.pk: 1})
    assert order.discount == Decimal("20.00")


def test_out_of_stock_is_refused_with_a_message_and_changes_nothing(customer, make_book):
    plenty, scarce = make_book(stock=10), make_book(stock=1, title="Rare Edition")
    with pytest.raises(OrderError, match="Only 1 left of “Rare Edition”"):
        order_checkout(user=customer, items={plenty.pk: 1, scarce.pk: 2})
    assert not Order.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert Book.objects.get(pk=plenty.pk).stock == 10


def test_a_changed_total_is_refused(customer, make_book):
    book = make_book("10.00")
    with pytest.raises(OrderError, match="total changed"):
        order_checkout(user=customer, items={book.pk: 1}, expected_total=Decimal("1.00"))
    assert not Order.objects.exists()
    order = order_checkout(user=customer, items={book.pk: 1}, expected_total=Decimal("10.00"))
    assert order.total == Decimal("10.00")


@pytest.mark.parametrize(
    "items", [{}, {1: 0}, {1: -1}, {1: 21}], ids=["empty", "zero", "negative", "over-cap"]
)
def test_bad_quantities_are_refused(customer, items):
    with pytest.raises(OrderError):
        order_checkout(user=customer, items=items)
    assert not Order.objects.exists()


def test_inactive_or_unknown_books_are_refused(customer, make_book):
    retired = make_book(active=False)
    for items in ({retired.pk: 1}, {999_999: 1}):
        with pytest.raises(OrderError, match="no longer sold"):
            order_checkout(user=customer, items=items)
    assert not Order.objects.exists()


def test_a_checkout_refused_for_a_retired_book_takes_it_out_of_the_cart(customer, make_book):
    on_sale, retired = make_book(), make_book()
    cart = Cart.objects.create(user=customer)
    for book in (on_sale, retired):
        CartLine.objects.create(cart=cart, book=book, quantity=1)
    Book.objects.filter(pk=retired.pk).update(active=False)

    with pytest.raises(OrderError, match="no longer sold; it has been removed"):
        cart_checkout(user=customer, cart=cart, cart_version=cart.version)
    assert dict(CartLine.objects.values_list("book_id", "quantity")) == {on_sale.pk: 1}
    cart.refresh_from_db()
    # A page showing the retired book is now out of date: it cannot buy.
    assert cart.version == 1
    assert not Order.objects.exists()
    assert cart_checkout(user=customer, cart=cart, cart_version=1).order.lines.count() == 1


def test_a_failure_mid_checkout_leaves_nothing_half_written(
    customer, make_book, make_promotion, monkeypatch
):
    make_promotion()
    books = [make_book("10.00", stock=4) for _ in range(3)]

    def broken(*, payload, **kwargs):
        if isinstance(payload, events_pb2.PromotionApplied):
            raise RuntimeError("the disk is full")
        return outbox_record(payload=payload, **kwargs)

    # The last write of a checkout fails, after the order, its lines, the
    # stock, the redemption and the first event: all of it must roll back.
    monkeypatch.setattr("marketplace_site.orders.services.outbox_record", broken)
    with pytest.raises(RuntimeError, match="disk is full"):
        order_checkout(user=customer, items={b.pk: 1 for b in books})
    assert not Order.objects.exists()
    assert not OrderLine.objects.exists()
    assert not Redemption.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert [b.stock for b in Book.objects.filter(pk__in=[b.pk for b in books])] == [4, 4, 4]
