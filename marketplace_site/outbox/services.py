"""Recording events in the outbox, inside the caller's transaction."""

from __future__ import annotations

from django.db import transaction
from google.protobuf.message import Message

from events.contracts import wrap
from events.tracing import current_trace_id, trace_context
from marketplace_site.outbox.models import OutboxMessage

PRODUCER = "marketplace"


class OutboxUsageError(RuntimeError):
    """The outbox was written outside a transaction, which would break atomicity."""


def outbox_record(*, payload: Message, correlation_id: str | None = None) -> OutboxMessage:
    """Add one event; it commits or rolls back with the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise OutboxUsageError("outbox_record() must run inside transaction.atomic()")
    envelope = wrap(
        payload,
        correlation_id=correlation_id or current_trace_id(),
        producer=PRODUCER,
    )
    return OutboxMessage.objects.create(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        envelope=envelope.SerializeToString(),
        correlation_id=envelope.correlation_id,
        # The relay publishes the row in this trace (events.tracing).
        trace_context=trace_context(),
    )
