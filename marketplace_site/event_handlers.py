"""Which marketplace handler applies which event, per consumer queue.

Handlers are plain functions taking an events.contracts.Event; the Celery
ConsumerStep runs each one through the inbox, so its effects and the
"applied" record commit together.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings

from events.celery_consumer import EventConsumers
from events.contracts import PROMOTION_APPLIED, PURCHASE_COMPLETED, Event
from events.dispatch import Handler
from events.metrics import consumer_outcome
from events.topology import Topology
from marketplace_site.campaigns.services import sales_record
from marketplace_site.inbox.services import inbox_apply
from marketplace_site.notifications.services import order_confirmation_send
from marketplace_site.promotions.services import promotion_stats_record
from marketplace_site.vouchers.services import voucher_grant_if_due

ROUTES: Mapping[str, Mapping[str, Handler]] = {
    "worker.promotions": {PROMOTION_APPLIED: promotion_stats_record},
    "worker.campaigns": {PURCHASE_COMPLETED: sales_record},
    "worker.emails": {PURCHASE_COMPLETED: order_confirmation_send},
    "worker.vouchers": {PURCHASE_COMPLETED: voucher_grant_if_due},
}


def event_topology() -> Topology:
    return Topology(
        namespace=settings.EVENTS_NAMESPACE, delivery_limit=settings.EVENTS_DELIVERY_LIMIT
    )


def _apply(consumer: str, event: Event, handler: Handler) -> bool:
    return inbox_apply(consumer=consumer, event=event, handler=handler)


def event_consumers() -> EventConsumers:
    return EventConsumers(
        topology=event_topology(),
        routes=ROUTES,
        apply=_apply,
        prefetch=settings.EVENTS_PREFETCH,
        on_outcome=consumer_outcome,
    )
