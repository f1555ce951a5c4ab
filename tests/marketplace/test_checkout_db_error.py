"""A real database error mid-checkout, raised by PostgreSQL itself, leaves
nothing half-written: no order, no lines, no stock taken, no redemption, no
voucher used, no event.

The errors come from triggers this test installs on the outbox table: one
refuses the checkout's last INSERT (the PromotionApplied event), after the
order, its lines, the stock, the voucher and the redemption were written;
the other is a deferred constraint trigger, so every statement succeeds and
the COMMIT itself fails.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection
from django.utils import timezone

from marketplace_site.catalog.models import Book
from marketplace_site.orders.models import Order, OrderLine
from marketplace_site.orders.services import order_checkout
from marketplace_site.outbox.models import OutboxMessage
from marketplace_site.promotions.models import PromotionStats, Redemption
from marketplace_site.vouchers.models import Voucher, VoucherRule

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

OUTBOX = OutboxMessage._meta.db_table
REFUSE = """
CREATE FUNCTION fault_refuse_outbox() RETURNS trigger AS $$
BEGIN
    IF NEW.event_type = 'promotions.promotion_applied' THEN
        RAISE EXCEPTION 'fault test: the outbox refuses %', NEW.event_type;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql
"""
TRIGGERS = {
    # The INSERT itself fails.
    "on-insert": f"""
        CREATE TRIGGER fault_refuse BEFORE INSERT ON {OUTBOX}
        FOR EACH ROW EXECUTE FUNCTION fault_refuse_outbox()
    """,
    # Checked at COMMIT: every statement of the checkout succeeded.
    "at-commit": f"""
        CREATE CONSTRAINT TRIGGER fault_refuse AFTER INSERT ON {OUTBOX}
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION fault_refuse_outbox()
    """,
}


@pytest.fixture(params=list(TRIGGERS))
def refusing_outbox(request):
    with connection.cursor() as cursor:
        cursor.execute(REFUSE)
        cursor.execute(TRIGGERS[request.param])
    yield request.param
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER IF EXISTS fault_refuse ON {OUTBOX}")
        cursor.execute("DROP FUNCTION IF EXISTS fault_refuse_outbox()")


def test_a_database_error_mid_checkout_leaves_nothing_half_written(
    refusing_outbox, customer, make_book, make_promotion
):
    promotion = make_promotion()
    books = [make_book("10.00", stock=4) for _ in range(3)]
    rule = VoucherRule.objects.create(name="Welcome", nth_purchase=1, percent_off=Decimal("10"))
    voucher = Voucher.objects.create(
        code="FAULTTEST2345ABCD",
        owner=customer,
        rule=rule,
        percent_off=Decimal("10"),
        granted_for_order_id=1,
        expires_at=timezone.now() + timedelta(days=1),
    )

    with pytest.raises(DatabaseError, match=r"the outbox refuses promotions\.promotion_applied"):
        order_checkout(
            user=customer,
            items={b.pk: 1 for b in books},
            expected_total=Decimal("18.00"),
            voucher_code=voucher.code,
        )

    assert not Order.objects.exists()
    assert not OrderLine.objects.exists()
    assert [b.stock for b in Book.objects.filter(pk__in=[b.pk for b in books])] == [4, 4, 4]
    assert not Redemption.objects.exists()
    assert not PromotionStats.objects.filter(promotion=promotion).exists()
    assert Voucher.objects.get(pk=voucher.pk).used_by_order_id is None
    assert not OutboxMessage.objects.exists()

    # The connection is usable afterwards, and the same checkout goes through
    # once the database accepts it.
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER fault_refuse ON {OUTBOX}")
    order = order_checkout(
        user=customer,
        items={b.pk: 1 for b in books},
        expected_total=Decimal("18.00"),
        voucher_code=voucher.code,
    )
    assert (order.discount, order.total) == (Decimal("10.00"), Decimal("18.00"))
    assert OutboxMessage.objects.count() == 2
    assert Redemption.objects.get().order == order
    assert Voucher.objects.get(pk=voucher.pk).used_by_order == order
