"""Which promotions a customer can still use."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, F, Q, QuerySet, Value
from django.utils import timezone

from marketplace_site.orders.pricing import PromotionRule
from marketplace_site.promotions.models import Promotion


def promotions_in_their_dates(*, now: datetime | None = None) -> QuerySet[Promotion]:
    """Active and within their dates, each with ``used``: its redemptions."""
    now = now or timezone.now()
    return (
        Promotion.objects.filter(active=True, starts_at__lte=now, ends_at__gt=now)
        .annotate(used=Count("redemptions"))
        .select_related("category")
        .order_by("id")
    )


def promotions_running(*, now: datetime | None = None) -> QuerySet[Promotion]:
    """Active, within their dates, and under their global limit."""
    return promotions_in_their_dates(now=now).filter(
        Q(global_limit__isnull=True) | Q(used__lt=F("global_limit"))
    )


def promotions_available(
    *, user: AbstractBaseUser | AnonymousUser, now: datetime | None = None
) -> list[Promotion]:
    """Running promotions the customer has not used up (all running ones for
    visitors), each with ``customer_uses``: the customer's uses when read."""
    running = promotions_running(now=now)
    if not user.is_authenticated:
        return list(running.annotate(customer_uses=Value(0)))
    running = running.annotate(customer_uses=Count("redemptions", filter=Q(redemptions__user=user)))
    return [p for p in running if p.customer_uses < p.per_customer_limit]


def promotion_rule(promotion: Promotion) -> PromotionRule:
    return PromotionRule(
        promotion_id=promotion.pk,
        name=promotion.name,
        buy_quantity=promotion.buy_quantity,
        category_code=promotion.category.code if promotion.category_id else None,
    )
