from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

# Its campaign report compares it with a window as long before it, day by day:
# both must be dates a datetime can hold, and a chart a page can show.
EARLIEST_START = datetime(2000, 1, 1, tzinfo=UTC)
LONGEST_RUN = timedelta(days=3660)


class Promotion(models.Model):
    """ "Buy N, get the cheapest free": an order with more than N eligible
    books gets its cheapest eligible book free (one per order)."""

    name = models.CharField(max_length=120)
    banner = models.CharField(
        max_length=200, blank=True, help_text="Shown on the home page; defaults to the name."
    )
    buy_quantity = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1)],
        help_text="N: with more than N eligible books in the cart, the cheapest is free.",
    )
    category = models.ForeignKey(
        "catalog.Category",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text="Only books of this category count and can be free; empty for all.",
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    per_customer_limit = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="How many orders of one customer may use it.",
    )
    global_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many orders in all may use it; empty for no limit."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="promotion_ends_after_it_starts",
            ),
            models.CheckConstraint(
                condition=models.Q(buy_quantity__gte=1), name="promotion_buy_at_least_one"
            ),
            models.CheckConstraint(
                condition=models.Q(per_customer_limit__gte=1),
                name="promotion_customer_limit_at_least_one",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.starts_at and self.starts_at < EARLIEST_START:
            raise ValidationError({"starts_at": "A promotion starts in 2000 or later."})
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "The promotion must end after it starts."})
        if self.starts_at and self.ends_at and self.ends_at - self.starts_at > LONGEST_RUN:
            raise ValidationError({"ends_at": "A promotion runs for ten years at the most."})

    @property
    def banner_text(self) -> str:
        return self.banner or self.name


class Redemption(models.Model):
    """The ledger of promotion use. (promotion, user, sequence) is unique and
    sequence runs 1..per_customer_limit, so two concurrent checkouts of one
    customer cannot both take the same (last) use: the database refuses one."""

    promotion = models.ForeignKey(Promotion, on_delete=models.PROTECT, related_name="redemptions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="redemptions"
    )
    sequence = models.PositiveSmallIntegerField()
    order = models.OneToOneField(
        "orders.Order", on_delete=models.PROTECT, related_name="redemption"
    )
    discount = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["promotion", "user", "sequence"], name="redemption_once_per_use"
            )
        ]

    def __str__(self) -> str:
        return f"{self.promotion} by {self.user} (#{self.sequence})"


class PromotionStats(models.Model):
    """Running totals per promotion, kept by the worker from PromotionApplied events."""

    promotion = models.OneToOneField(Promotion, on_delete=models.CASCADE, related_name="stats")
    redemptions = models.PositiveIntegerField(default=0)
    discount_total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    last_redeemed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "promotion stats"

    def __str__(self) -> str:
        return f"{self.promotion}: {self.redemptions} redemptions"
