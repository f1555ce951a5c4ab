"""Recording events in the outbox, inside the caller's transaction."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Field
from google.protobuf.message import Message

from events.contracts import wrap
from events.tracing import current_trace_id, trace_context
from marketplace_site.outbox.models import OutboxMessage

PRODUCER = "marketplace"

# What a new row carries; every other column has a default the database fills in.
_RECORDED = ("event_id", "event_type", "envelope", "correlation_id", "trace_context")


class OutboxUsageError(RuntimeError):
    """The outbox was written outside a transaction, which would break atomicity."""


def outbox_record(*, payload: Message, correlation_id: str | None = None) -> OutboxMessage:
    """Add one event; it commits or rolls back with the caller's transaction."""
    alias = router.db_for_write(OutboxMessage)
    if not transaction.get_connection(alias).in_atomic_block:
        raise OutboxUsageError("outbox_record() must run inside transaction.atomic()")
    envelope = wrap(
        payload,
        correlation_id=correlation_id or current_trace_id(),
        producer=PRODUCER,
    )
    values = (
        envelope.event_id,
        envelope.event_type,
        envelope.SerializeToString(),
        envelope.correlation_id,
        # The relay publishes the row in this trace (events.tracing).
        trace_context(),
    )
    return OutboxMessage.from_db(alias, ["id", *_RECORDED], [_insert(alias, values), *values])


def _insert(alias: str, values: tuple[object, ...]) -> int:
    """INSERT the row; its id.

    Written out rather than by ``objects.create()``: a checkout waits on it,
    and the ORM's model and query compilation took as long as the database
    (0.3 ms of the 0.8 ms the outbox added to a checkout, bench/README.md).
    Each value still goes through its field's own conversion.
    """
    connection = connections[alias]
    sql, fields = _statement(alias)
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (row_id,) = cursor.fetchone()
    return int(row_id)


@functools.cache
def _statement(alias: str) -> tuple[str, list[Field[Any, Any]]]:
    """The INSERT for database ``alias``, and the fields of its values."""
    by_name = {field.name: field for field in OutboxMessage._meta.concrete_fields}
    fields = [by_name[name] for name in _RECORDED]
    quote = connections[alias].ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({}) RETURNING {}".format(
        quote(OutboxMessage._meta.db_table),
        ", ".join(quote(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
        quote(OutboxMessage._meta.pk.column),
    )
    return sql, fields
