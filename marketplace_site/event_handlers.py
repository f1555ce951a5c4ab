"""How the Celery worker applies events: through the inbox, and what it depends on.

Which handler applies which event is events.routes' table. Handlers are plain
functions taking a batch of events.contracts.Event of one type; each batch
runs through the inbox, so its effects and the "applied" records commit
together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import cast

from django.conf import settings
from django.db import DatabaseError, connection

from events.celery_consumer import EventConsumers
from events.consuming import Handler
from events.contracts import Event
from events.routes import handlers
from events.topology import WORKER_CONSUMERS, Topology
from marketplace_site.emails import mail_server_up
from marketplace_site.health import database_ping
from marketplace_site.inbox.services import inbox_apply_batch


def event_topology() -> Topology:
    return Topology(
        namespace=settings.EVENTS_NAMESPACE,
        delivery_limit=settings.EVENTS_DELIVERY_LIMIT,
        history_max_bytes=settings.EVENTS_HISTORY_MAX_BYTES,
    )


class ForeignCurrency(ValueError):
    """An event's money is not in the shop's currency: summing it would be wrong."""


def _apply_batch(consumer: str, events: Sequence[Event], handler: Handler) -> set[str]:
    # The contract checks the code's form; which currency is the shop's is
    # this service's setting. Every worker consumer sums or counts money.
    for event in events:
        currency = getattr(event.payload, "currency", settings.SHOP_CURRENCY)
        if currency != settings.SHOP_CURRENCY:
            raise ForeignCurrency(
                f"{event.event_type} {event.event_id} is in {currency}; "
                f"this shop counts in {settings.SHOP_CURRENCY}"
            )
    return inbox_apply_batch(consumer=consumer, events=events, handler=handler)


def database_up() -> bool:
    """Whether the worker reaches its database now: after a failed batch, it
    tells an outage (hold the events) from a fault of the events (retry them)."""
    for _ in range(2):
        try:
            database_ping()
        except DatabaseError:
            # Broken by the outage, perhaps: the second try opens a new one.
            connection.close()
        else:
            return True
    return False


# What each consumer's handlers need besides their events; while one of these
# is down, that queue's batches wait for it instead of being retried.
DEPENDENCIES: Mapping[str, Sequence[Callable[[], bool]]] = {
    "worker.emails": (database_up, mail_server_up),
    # A granted voucher is e-mailed in the grant's transaction.
    "worker.vouchers": (database_up, mail_server_up),
}


def dependencies_up(consumer: str) -> bool:
    return all(check() for check in DEPENDENCIES.get(consumer, (database_up,)))


def worker_handlers() -> dict[str, dict[str, Handler]]:
    """The worker's handlers by consumer (events.routes), imported."""
    return {name: cast(dict[str, Handler], handlers(name)) for name in WORKER_CONSUMERS}


def event_consumers() -> EventConsumers[Handler]:
    return EventConsumers(
        topology=event_topology(),
        handlers=worker_handlers(),
        apply_batch=_apply_batch,
        prefetch=settings.EVENTS_PREFETCH,
        batch_size=settings.EVENTS_BATCH_SIZE,
        batch_wait=settings.EVENTS_BATCH_WAIT_MS / 1000,
        dependencies_up=dependencies_up,
        log_each=settings.EVENTS_LOG_EACH,
    )
