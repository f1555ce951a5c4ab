"""Which consumer handles which event types, and with what: the one table.

Each consumer's queue is bound to exactly the event types it has a handler
for (events.topology derives its bindings from here), so an event reaches
only a consumer that can apply it. Handlers are named by import path, not
imported: this package sits below the apps that own them.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module

from events.contracts import (
    BOOK_UPSERTED,
    ORDER_STATUS_CHANGED,
    PROMOTION_APPLIED,
    PURCHASE_COMPLETED,
)

_SITE = "marketplace_site"

# Consumer -> event type -> handler ("module:function"). The Celery worker's
# handlers each have a queue, so a failing e-mail never holds back the ledger;
# every recommender replica has its own queue ("recommender.<instance>").
ROUTES: Mapping[str, Mapping[str, str]] = {
    "worker.promotions": {PROMOTION_APPLIED: f"{_SITE}.promotions.services:promotion_stats_record"},
    "worker.campaigns": {PURCHASE_COMPLETED: f"{_SITE}.campaigns.services:sales_record"},
    "worker.emails": {
        PURCHASE_COMPLETED: f"{_SITE}.notifications.services:order_confirmation_send",
        ORDER_STATUS_CHANGED: f"{_SITE}.notifications.services:order_status_send",
    },
    "worker.vouchers": {PURCHASE_COMPLETED: f"{_SITE}.vouchers.services:voucher_grant_if_due"},
    "recommender": {
        BOOK_UPSERTED: "recommender.events_consumer:book_changes",
        PURCHASE_COMPLETED: "recommender.events_consumer:purchase_changes",
    },
}


class MissingHandler(ImportError):
    """A route names a handler that cannot be imported: the consumer cannot start."""


def handlers(consumer: str) -> dict[str, object]:
    """``consumer``'s handlers by event type, imported; fails naming the route."""
    resolved: dict[str, object] = {}
    for event_type, path in ROUTES[consumer].items():
        module, _, name = path.partition(":")
        try:
            resolved[event_type] = getattr(import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise MissingHandler(
                f"events.routes: {consumer} handles {event_type} with {path}, which cannot be"
                f" imported ({type(exc).__name__}: {exc})"
            ) from exc
    return resolved
