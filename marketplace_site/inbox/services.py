"""Applying events exactly once per consumer."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from django.db import connection, transaction
from django.utils import timezone

from events.contracts import Event
from marketplace_site.inbox.models import InboxEvent

_COLUMNS = ("consumer", "event_id", "event_type", "correlation_id", "applied_at")

BatchHandler = Callable[[Sequence[Event]], None]


def inbox_apply_batch(*, consumer: str, events: Sequence[Event], handler: BatchHandler) -> set[str]:
    """Record the events and run ``handler`` on those not recorded before, in
    one transaction; returns the ids applied now.

    Events this consumer already applied (redeliveries) are left out of the
    handler's batch. If the handler raises, nothing is recorded.
    """
    with transaction.atomic():
        fresh = _record(consumer, events)
        if fresh:
            handler(fresh)
    return {event.event_id for event in fresh}


def inbox_apply(*, consumer: str, event: Event, handler: BatchHandler) -> bool:
    """One event; False, doing nothing, when it was applied before."""
    return bool(inbox_apply_batch(consumer=consumer, events=[event], handler=handler))


def _record(consumer: str, events: Sequence[Event]) -> list[Event]:
    """Insert a (consumer, event) row per event unless it is there, in one
    statement; the events inserted, in their order. A concurrent worker
    recording the same row first makes this one wait for its commit, then
    skip it."""
    meta = InboxEvent._meta
    fields = [meta.get_field(name) for name in _COLUMNS]
    quote = connection.ops.quote_name
    now = timezone.now()
    # Keyed by the UUID, not its spelling: one event twice in a batch is recorded once.
    unique: dict[uuid.UUID, Event] = {}
    for event in events:
        unique.setdefault(uuid.UUID(event.event_id), event)
    params: list[object] = []
    # In key order, so two workers inserting overlapping batches (a redelivery
    # racing its first delivery) wait for each other instead of deadlocking.
    for key in sorted(unique):
        event = unique[key]
        values = (consumer, event.event_id, event.event_type, event.correlation_id, now)
        params += [f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)]
    row = f"({', '.join(['%s'] * len(fields))})"
    event_id = quote(fields[1].column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
            f" VALUES {', '.join([row] * len(unique))}"
            f" ON CONFLICT ({quote(fields[0].column)}, {event_id}) DO NOTHING"
            f" RETURNING {event_id}",
            params,
        )
        inserted = {fields[1].to_python(value) for (value,) in cursor.fetchall()}
    return [event for key, event in unique.items() if key in inserted]
