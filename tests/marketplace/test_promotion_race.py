"""Once per customer holds under real concurrency (PostgreSQL, two transactions)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from marketplace_site.orders import services
from marketplace_site.orders.models import Order
from marketplace_site.orders.services import OrderError, order_checkout
from marketplace_site.promotions.models import Redemption

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


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

    def checkout(items: dict[int, int]) -> None:
        try:
            outcomes.append(order_checkout(user=customer, items=items))
        except OrderError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=checkout, args=(cart,)) for cart in carts]
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
