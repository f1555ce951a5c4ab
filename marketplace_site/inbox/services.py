"""Applying an event exactly once per consumer."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection, transaction
from django.utils import timezone

from events.contracts import Event
from marketplace_site.inbox.models import InboxEvent

_COLUMNS = ("consumer", "event_id", "event_type", "correlation_id", "applied_at")


def inbox_apply(*, consumer: str, event: Event, handler: Callable[[Event], None]) -> bool:
    """Run ``handler`` and record the event in one transaction.

    Returns False, doing nothing, when this consumer already applied the
    event (a redelivery). If the handler raises, nothing is recorded.
    """
    with transaction.atomic():
        if not _record(consumer, event):
            return False
        handler(event)
    return True


def _record(consumer: str, event: Event) -> bool:
    """Insert the (consumer, event) row unless it is there: one round trip, where
    a check, a savepoint and an insert took four. A concurrent worker recording
    the same row first makes this one wait for its commit, then find it."""
    meta = InboxEvent._meta
    values = (consumer, event.event_id, event.event_type, event.correlation_id, timezone.now())
    fields = [meta.get_field(name) for name in _COLUMNS]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
            f" VALUES ({', '.join(['%s'] * len(fields))})"
            f" ON CONFLICT ({quote(fields[0].column)}, {quote(fields[1].column)}) DO NOTHING",
            [f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)],
        )
        return cursor.rowcount == 1
