"""Promotion bookkeeping from events (the worker's side)."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F

from bookstore.events.v1 import events_pb2
from events.contracts import Event
from marketplace_site.promotions.models import Promotion, PromotionStats


class UnknownPromotion(LookupError):
    """The event names a promotion this database does not have."""


def promotion_stats_record(event: Event) -> None:
    """Count one redemption and its discount (runs inside the inbox transaction)."""
    payload: events_pb2.PromotionApplied = event.payload
    if not Promotion.objects.filter(pk=payload.promotion_id).exists():
        raise UnknownPromotion(f"promotion {payload.promotion_id} does not exist")
    stats, _ = PromotionStats.objects.get_or_create(promotion_id=payload.promotion_id)
    PromotionStats.objects.filter(pk=stats.pk).update(
        redemptions=F("redemptions") + 1,
        discount_total=F("discount_total") + Decimal(payload.discount or "0"),
        last_redeemed_at=event.occurred_at,
    )
