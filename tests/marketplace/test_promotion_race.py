"""Once per customer holds under real concurrency (PostgreSQL, two transactions)."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connection

from marketplace_site.orders import services
from marketplace_site.orders.models import Order
from marketplace_site.orders.services import OrderError, order_checkout
from marketplace_site.promotions.models import Redemption

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def checkout_into(outcomes: list[object], user, items: dict[int, int], **options) -> None:
    """A checkout in a thread of its own: its order, or the OrderError it raised."""
    try:
        outcomes.append(order_checkout(user=user, items=items, **options))
    except OrderError as exc:
        outcomes.append(exc)
    finally:
        connection.close()


def test_two_concurrent_checkouts_of_one_customer_redeem_once(
    customer, make_book, make_promotion, monkeypatch
):
    make_promotion()
    # Different books per checkout: no shared row lock serializes them.
    carts = [{make_book("10.00").pk: 1 for _ in range(3)} for _ in range(2)]
    both_checked = threading.Barrier(2, timeout=10)
    real_available = services.promotions_available

    def available_then_wait(**kwargs):
        # Both transactions see the promotion unused before either redeems it.
        found = real_available(**kwargs)
        both_checked.wait()
        return found

    monkeypatch.setattr(services, "promotions_available", available_then_wait)
    outcomes: list[object] = []
    threads = [
        threading.Thread(target=checkout_into, args=(outcomes, customer, cart)) for cart in carts
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    orders = [o for o in outcomes if isinstance(o, Order)]
    refused = [o for o in outcomes if isinstance(o, OrderError)]
    assert len(orders) == 1, outcomes
    assert orders[0].discount == Decimal("10.00")
    assert len(refused) == 1
    assert "just used on another of your orders" in str(refused[0])
    assert Redemption.objects.filter(user=customer).count() == 1
    assert Order.objects.count() == 1


def test_a_use_committed_after_the_check_is_refused_too(
    customer, make_book, make_promotion, monkeypatch
):
    """A customer's second session finds the promotion unused, the first then
    commits its use, and the second goes on: once per customer still holds."""
    make_promotion()  # no global limit: no lock puts the two checkouts in line
    late_cart, early_cart = ({make_book("10.00").pk: 1 for _ in range(3)} for _ in range(2))
    checked, early_committed = threading.Event(), threading.Event()
    real_available = services.promotions_available
    late_outcome: list[object] = []

    def available_then_wait_for_the_early_one(**kwargs):
        found = real_available(**kwargs)
        if threading.current_thread() is late:
            checked.set()
            assert early_committed.wait(10)
        return found

    monkeypatch.setattr(services, "promotions_available", available_then_wait_for_the_early_one)
    late = threading.Thread(target=checkout_into, args=(late_outcome, customer, late_cart))
    late.start()
    assert checked.wait(10)
    early = order_checkout(user=customer, items=early_cart)
    early_committed.set()
    late.join(20)

    assert early.discount == Decimal("10.00")
    [refused] = late_outcome
    assert isinstance(refused, OrderError), refused
    assert "just used on another of your orders" in str(refused)
    assert list(Redemption.objects.filter(user=customer).values_list("order", flat=True)) == [
        early.pk
    ]
    assert Order.objects.count() == 1


def test_two_posts_of_one_cart_page_at_once_place_one_order(customer, make_book, monkeypatch):
    """A double click whose two posts both find no order with the page's key
    yet: the second waits for the books, then finds the first's order."""
    book = make_book("10.00", stock=5)
    key = uuid.uuid4()
    both_looked = threading.Barrier(2, timeout=10)
    real_placed_with = services._placed_with
    looked: set[threading.Thread] = set()

    def placed_with_then_wait(user, checkout_key):
        found = real_placed_with(user, checkout_key)
        if threading.current_thread() not in looked:  # only the first look waits
            looked.add(threading.current_thread())
            both_looked.wait()
        return found

    monkeypatch.setattr(services, "_placed_with", placed_with_then_wait)
    outcomes: list[object] = []
    threads = [
        threading.Thread(
            target=checkout_into,
            args=(outcomes, customer, {book.pk: 2}),
            kwargs={"checkout_key": key},
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    [order] = Order.objects.all()
    assert [getattr(o, "pk", o) for o in outcomes] == [order.pk, order.pk]
    book.refresh_from_db()
    assert book.stock == 3
