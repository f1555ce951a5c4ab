"""What the worker's consumers applied, against what the site recorded: exact counts.

The outbox is the record of every event the site produced. After a fault,
each worker consumer must have applied each event of its types exactly once:
one inbox row per (consumer, event), and effects that add up to the orders
themselves, not to the number of deliveries.
"""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

from django.db.models import Count, Sum

from events.topology import CONSUMERS, WORKER_CONSUMERS, Topology
from marketplace_site.campaigns.models import DailySales, SaleLine
from marketplace_site.inbox.models import InboxEvent
from marketplace_site.orders.models import Order, OrderLine
from marketplace_site.outbox.models import OutboxMessage
from marketplace_site.promotions.models import PromotionStats, Redemption
from marketplace_site.vouchers.models import PurchaseCount
from tests.events.broker import message_count, wait_until

CONFIRMATION_SUBJECT = re.compile(r"^Subject: Your order #(\d+) is confirmed$", re.MULTILINE)


def recorded_events() -> dict[str, set[str]]:
    """Per worker consumer: the ids of the recorded events it must apply."""
    by_type: dict[str, set[str]] = {}
    for event_id, event_type in OutboxMessage.objects.values_list("event_id", "event_type"):
        by_type.setdefault(event_type, set()).add(str(event_id))
    return {
        consumer: set().union(*(by_type.get(t, set()) for t in CONSUMERS[consumer]))
        for consumer in WORKER_CONSUMERS
    }


def inbox_counts() -> dict[str, int]:
    counts = dict(
        InboxEvent.objects.order_by()
        .values_list("consumer")
        .annotate(n=Count("id"))
        .values_list("consumer", "n")
    )
    return {consumer: counts.get(consumer, 0) for consumer in WORKER_CONSUMERS}


def expected_counts() -> dict[str, int]:
    return {consumer: len(ids) for consumer, ids in recorded_events().items()}


def wait_until_every_consumer_applied(timeout: float = 60) -> None:
    wait_until(
        lambda: inbox_counts() == expected_counts(),
        timeout=timeout,
        what=f"every consumer to apply every event (expected {expected_counts()})",
    )


def confirmations_sent(mail: Path) -> Counter[int]:
    """Order ids of the confirmation e-mails in a file-based backend's folder."""
    found: Counter[int] = Counter()
    for path in mail.iterdir() if mail.exists() else ():
        found.update(int(n) for n in CONFIRMATION_SUBJECT.findall(path.read_text()))
    return found


def assert_applied_exactly_once(*, topology: Topology, mail: Path | None = None) -> None:
    """Every recorded event applied once by each of its consumers, and effects to match."""
    recorded = recorded_events()
    applied = {
        consumer: list(
            InboxEvent.objects.filter(consumer=consumer).values_list("event_id", flat=True)
        )
        for consumer in WORKER_CONSUMERS
    }
    for consumer in WORKER_CONSUMERS:
        ids = [str(event_id) for event_id in applied[consumer]]
        assert len(ids) == len(set(ids)), f"{consumer} applied an event twice"
        assert set(ids) == recorded[consumer], f"{consumer} applied other events than recorded"

    # worker.promotions: one redemption counted per redemption made, and its discount.
    redemptions = {
        row["promotion"]: (row["n"], row["total"])
        for row in Redemption.objects.order_by()
        .values("promotion")
        .annotate(n=Count("id"), total=Sum("discount"))
    }
    stats = {
        s.promotion_id: (s.redemptions, s.discount_total)
        for s in PromotionStats.objects.filter(redemptions__gt=0)
    }
    assert stats == redemptions

    # worker.campaigns: one sale line per order line, and the day totals add up.
    ordered = Counter(OrderLine.objects.values_list("order_id", "book_id", "quantity"))
    ledger = Counter(SaleLine.objects.values_list("order_id", "book_id", "quantity"))
    assert ledger == ordered
    units = OrderLine.objects.aggregate(n=Sum("quantity"))["n"] or 0
    revenue = OrderLine.objects.aggregate(r=Sum("line_total"))["r"] or Decimal("0")
    day_totals = DailySales.objects.aggregate(u=Sum("units"), r=Sum("revenue"), o=Sum("orders"))
    assert (day_totals["u"] or 0, day_totals["r"] or Decimal("0")) == (units, revenue)
    assert (day_totals["o"] or 0) == OrderLine.objects.count()

    # worker.vouchers: each purchase counted once per customer.
    purchases = Counter(Order.objects.values_list("user_id", flat=True))
    assert dict(PurchaseCount.objects.values_list("user_id", "purchases")) == dict(purchases)

    # worker.emails: one confirmation per order.
    if mail is not None:
        assert confirmations_sent(mail) == Counter(Order.objects.values_list("pk", flat=True))

    # Nothing was given up on.
    for spec in topology.worker_queues():
        assert message_count(spec.dead_letter_queue) == 0, f"{spec.dead_letter_queue} not empty"
