"""The worker's sales ledgers, fed by PurchaseCompleted events.

Books and orders are plain integer ids, not foreign keys: the worker learns
them from events and must not depend on the orders tables being there (or
the book still existing).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class SaleLine(models.Model):
    """One row per (order, book) line of a completed purchase."""

    order_id = models.BigIntegerField()
    user_id = models.BigIntegerField()
    book_id = models.BigIntegerField()
    category_code = models.PositiveSmallIntegerField()
    quantity = models.PositiveIntegerField()
    # The line's total before any promotion or voucher: what the book sold for
    # at list price. What the customer paid is that less both discounts.
    revenue = models.DecimalField(max_digits=12, decimal_places=2)
    # The line's share of the order's promotion and voucher discounts.
    promotion_discount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    voucher_discount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    # When the checkout committed (the event's occurred_at), not when the worker ran.
    sold_at = models.DateTimeField()

    class Meta:
        ordering = ["-sold_at", "-id"]
        constraints = [
            # The inbox makes redeliveries no-ops; this catches the same order
            # arriving under another event id.
            models.UniqueConstraint(
                fields=["order_id", "book_id"], name="sale_line_once_per_order"
            ),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1), name="sale_line_quantity_positive"
            ),
        ]
        indexes = [models.Index(fields=["sold_at", "category_code"])]

    def __str__(self) -> str:
        return f"order {self.order_id}: {self.quantity} x book {self.book_id}"


class DailySales(models.Model):
    """Units, revenue at list price and orders of one book on one day (in
    TIME_ZONE). The campaign report reads the lines instead: it needs what
    customers paid, and the day's sales on either side of a campaign's start."""

    book_id = models.BigIntegerField()
    day = models.DateField()
    category_code = models.PositiveSmallIntegerField()
    units = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    orders = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "book_id"]
        verbose_name_plural = "daily sales"
        constraints = [
            models.UniqueConstraint(fields=["book_id", "day"], name="daily_sales_once_per_book_day")
        ]
        indexes = [models.Index(fields=["day", "category_code"])]

    def __str__(self) -> str:
        return f"book {self.book_id} on {self.day}: {self.units} sold"
