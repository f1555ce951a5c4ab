"""The discounts of the lines recorded before lines carried them, from their
orders: the campaign report counts what customers paid."""

from django.db import migrations
from django.db.models import Q

from marketplace_site.orders.discount_shares import line_discounts_guessed
from marketplace_site.pricing import PricedLine

BATCH = 500


def backfill(apps, schema_editor):
    SaleLine = apps.get_model("campaigns", "SaleLine")
    Order = apps.get_model("orders", "Order")
    discounted = (
        Order.objects.filter(Q(discount__gt=0) | Q(voucher_discount__gt=0))
        .order_by("pk")
        .values_list("pk", "discount", "voucher_discount")
    )
    for order_id, discount, voucher_discount in discounted.iterator(chunk_size=BATCH):
        sales = list(SaleLine.objects.filter(order_id=order_id).order_by("book_id"))
        if not sales:
            continue
        shares = line_discounts_guessed(
            [
                PricedLine(
                    book_id=sale.book_id,
                    title="",
                    category_code=sale.category_code,
                    unit_price=sale.revenue / sale.quantity,
                    quantity=sale.quantity,
                )
                for sale in sales
            ],
            promotion_discount=discount,
            voucher_discount=voucher_discount,
        )
        for sale, share in zip(sales, shares, strict=True):
            sale.promotion_discount = share.promotion
            sale.voucher_discount = share.voucher
        SaleLine.objects.bulk_update(sales, ["promotion_discount", "voucher_discount"])


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0002_sale_line_discounts"),
        ("orders", "0003_order_voucher"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
