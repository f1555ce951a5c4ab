"""Promotion bookkeeping from events (the worker's side)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from bookstore.events.v1 import events_pb2
from events.contracts import Event, payload_as
from marketplace_site.counters import counters_add
from marketplace_site.lookups import all_by_id
from marketplace_site.promotions.models import Promotion, PromotionStats


class UnknownPromotion(LookupError):
    """The event names a promotion this database does not have."""


def promotion_stats_record(events: Sequence[Event]) -> None:
    """Count redemptions and their discounts (runs inside the inbox transaction)."""
    totals: dict[tuple[int], dict[str, Any]] = {}
    for event in events:
        payload = payload_as(event, events_pb2.PromotionApplied)
        row = totals.setdefault(
            (payload.promotion_id,),
            {"redemptions": 0, "discount_total": Decimal(0), "last_redeemed_at": event.occurred_at},
        )
        row["redemptions"] += 1
        row["discount_total"] += Decimal(payload.discount or "0")
        row["last_redeemed_at"] = max(row["last_redeemed_at"], event.occurred_at)
    all_by_id(
        Promotion.objects.only("pk"),
        (pk for (pk,) in totals),
        error=UnknownPromotion,
        noun="promotion",
    )
    counters_add(
        PromotionStats,
        key=("promotion",),
        rows=totals,
        add=("redemptions", "discount_total"),
        greatest=("last_redeemed_at",),
    )
