from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class VoucherRule(models.Model):
    """ "After a customer's Nth purchase, grant a one-time voucher of X% off
    the next order." Each rule grants at most one voucher per customer."""

    name = models.CharField(max_length=120)
    nth_purchase = models.PositiveIntegerField(
        validators=[MinValueValidator(1)],
        help_text="N: the voucher is granted when the customer completes their Nth purchase.",
    )
    percent_off = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("1")), MaxValueValidator(Decimal("100"))],
        help_text="X: the percentage taken off the next order's total (1 to 100).",
    )
    valid_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        # Ten years: an expiry date must be one a date can hold (no later than 9999).
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Days a granted voucher can be used (at most 3650); empty for no expiry.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["nth_purchase", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(nth_purchase__gte=1), name="voucher_rule_nth_at_least_one"
            ),
            models.CheckConstraint(
                condition=models.Q(percent_off__gte=1, percent_off__lte=100),
                name="voucher_rule_percent_between_1_and_100",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Voucher(models.Model):
    """A one-time discount owned by one customer. Used at most once: checkout
    locks it, sets ``used_by_order``, and the order's own unique voucher
    column refuses a second order with it."""

    code = models.CharField(max_length=32, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="vouchers"
    )
    rule = models.ForeignKey(VoucherRule, on_delete=models.PROTECT, related_name="vouchers")
    # Copied from the rule: editing a rule never changes vouchers already granted.
    percent_off = models.DecimalField(max_digits=5, decimal_places=2)
    granted_for_order_id = models.BigIntegerField()
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    used_by_order = models.OneToOneField(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="redeemed_voucher",
    )

    class Meta:
        ordering = ["-granted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "owner"], name="voucher_once_per_rule_and_owner"
            ),
            models.CheckConstraint(
                condition=models.Q(percent_off__gte=1, percent_off__lte=100),
                name="voucher_percent_between_1_and_100",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.percent_label}% off, {self.owner})"

    @property
    def percent_label(self) -> str:
        """10 rather than 10.00, 12.5 rather than 12.50."""
        return f"{self.percent_off.normalize():f}"


class PurchaseCount(models.Model):
    """How many PurchaseCompleted events of a customer the voucher handler has
    applied: the N in "after the Nth purchase"."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="purchase_count"
    )
    purchases = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.user}: {self.purchases} purchases"
