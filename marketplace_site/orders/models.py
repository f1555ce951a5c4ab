from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models.functions import Round
from django.urls import reverse


class Cart(models.Model):
    """A customer's or an anonymous visitor's cart (orders/cart.py). Every
    change locks its row, so requests at the same moment take turns, and a
    checkout takes the cart once."""

    # The customer it belongs to, on every device and across logins; None
    # for a visitor's, which belongs to a session until they log in.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="cart",
        editable=False,
    )
    # The session a visitor's cart was made for: a session's parallel first
    # requests find one cart. The session keeps the cart's id as well.
    session_key = models.CharField(max_length=40, unique=True, null=True, editable=False)
    # One up with every change; a cart page posts the version it showed.
    version = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=True) | models.Q(session_key__isnull=True),
                name="cart_of_a_customer_or_a_session",
            )
        ]

    def __str__(self) -> str:
        return f"Cart #{self.pk}"


class CartLine(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines")
    book = models.ForeignKey("catalog.Book", on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cart", "book"], name="cart_line_one_per_book"),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1), name="cart_line_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x book {self.book_id}"


class Order(models.Model):
    class Status(models.TextChoices):
        # In the order a parcel goes; staff move it on in the admin.
        PLACED = "placed", "Placed"
        SHIPPED = "shipped", "Shipped"
        DELIVERED = "delivered", "Delivered"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLACED)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=10, decimal_places=2)
    discount = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    total = models.DecimalField(max_digits=10, decimal_places=2)
    promotion = models.ForeignKey(
        "promotions.Promotion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
    )
    voucher = models.ForeignKey(
        "vouchers.Voucher",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
    )
    # Taken off after the promotion's discount.
    voucher_discount = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    correlation_id = models.CharField(max_length=64, blank=True)
    # The cart page's key for this checkout: a second post of the same page
    # (a double click, a retried request) finds this order instead of placing
    # another.
    checkout_key = models.UUIDField(null=True, blank=True, editable=False)
    # The cart and its version this order bought: whichever page posts that
    # cart again finds this order instead of placing another.
    cart = models.ForeignKey(
        Cart, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    cart_version = models.PositiveIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                # Rounded: SQLite stores decimals as floats, whose differences are
                # inexact (31.47 - 10.99 = 20.479999999999997); exact elsewhere.
                condition=models.Q(
                    total=Round(
                        models.F("subtotal") - models.F("discount") - models.F("voucher_discount"),
                        2,
                    )
                ),
                name="order_total_is_subtotal_minus_discounts",
            ),
            # A voucher is one-time: the database refuses a second order with it.
            models.UniqueConstraint(fields=["voucher"], name="order_voucher_used_once"),
            models.UniqueConstraint(
                fields=["user", "checkout_key"], name="order_placed_once_per_checkout_key"
            ),
            models.UniqueConstraint(
                fields=["cart", "cart_version"], name="order_placed_once_per_cart_version"
            ),
            models.CheckConstraint(
                condition=models.Q(total__gte=0), name="order_total_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("order-detail", args=[self.pk])

    @staticmethod
    def statuses_after(status: str) -> list[str]:
        """The statuses an order in ``status`` may move on to (forward only)."""
        values = list(Order.Status.values)
        return values[values.index(status) + 1 :]


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    book = models.ForeignKey("catalog.Book", on_delete=models.PROTECT, related_name="order_lines")
    # What the customer saw and paid, kept even if the book changes later.
    title = models.CharField(max_length=300)
    unit_price = models.DecimalField(max_digits=8, decimal_places=2)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "book"], name="order_line_one_per_book"),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1), name="order_line_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.title}"
