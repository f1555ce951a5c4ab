"""Three books at any prices, with the promotion and a voucher: the order is accepted.

Found by the load test: on SQLite, decimals are stored as floating point, and
the order's CHECK (total = subtotal - discount - voucher discount) compared
inexact differences (31.47 - 10.99 is 20.479999999999997), refusing more than
half of the demo catalog's three-book baskets with the promotion.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.contracts import PURCHASE_COMPLETED, unwrap
from marketplace_site.orders.models import Order
from marketplace_site.orders.services import order_checkout
from marketplace_site.outbox.models import OutboxMessage
from marketplace_site.vouchers.models import Voucher, VoucherRule

pytestmark = pytest.mark.django_db

PRICES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    prices=st.lists(PRICES, min_size=3, max_size=3),
    percent_off=st.one_of(st.none(), st.sampled_from(["5", "10", "12.5", "33"])),
)
def test_every_basket_with_the_promotion_and_a_voucher_is_accepted(
    customer, make_book, make_promotion, prices, percent_off
):
    with transaction.atomic():
        make_promotion()
        books = [make_book(str(price)) for price in prices]
        code = ""
        if percent_off is not None:
            rule = VoucherRule.objects.create(
                name="Thanks", nth_purchase=1, percent_off=Decimal(percent_off)
            )
            code = Voucher.objects.create(
                code="AMOUNTS23456789AB",
                owner=customer,
                rule=rule,
                percent_off=Decimal(percent_off),
                granted_for_order_id=1,
                expires_at=timezone.now() + timedelta(days=1),
            ).code

        order = order_checkout(user=customer, items={b.pk: 1 for b in books}, voucher_code=code)

        stored = Order.objects.get(pk=order.pk)
        assert stored.subtotal == sum(prices)
        assert stored.discount == min(prices)
        assert stored.total == stored.subtotal - stored.discount - stored.voucher_discount
        # Its event shares both discounts out to the lines as the contract checks them.
        [row] = OutboxMessage.objects.filter(event_type=PURCHASE_COMPLETED)
        lines = unwrap(bytes(row.envelope)).payload.lines
        paid = sum(
            Decimal(ln.line_total) - Decimal(ln.promotion_discount) - Decimal(ln.voucher_discount)
            for ln in lines
        )
        assert paid == stored.total
        transaction.set_rollback(True)
