"""Applying events exactly once per consumer."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from events.consuming import Handler
from events.contracts import Event
from marketplace_site.inbox.models import InboxEvent, InboxFact
from marketplace_site.upsert import upsert

log = logging.getLogger(__name__)

_COLUMNS = ("consumer", "event_id", "event_type", "correlation_id", "applied_at")
_FACT_COLUMNS = ("consumer", "event_type", "key", "event_id", "applied_at")


def inbox_apply_batch(*, consumer: str, events: Sequence[Event], handler: Handler) -> set[str]:
    """Record the events and run ``handler`` on those not recorded before, in
    one transaction; returns the ids applied now.

    Events this consumer already applied (redeliveries), and those whose
    fact it applied under another event id (an order published again), are
    left out of the handler's batch. If the handler raises, nothing is recorded.
    """
    with transaction.atomic():
        fresh = _new_facts(consumer, _record(consumer, events))
        if fresh:
            handler(fresh)
    return {event.event_id for event in fresh}


def _record(consumer: str, events: Sequence[Event]) -> list[Event]:
    """Insert a (consumer, event) row per event unless it is there, in one
    statement; the events inserted, in their order. A concurrent worker
    recording the same row first makes this one wait for its commit, then
    skip it."""
    now = timezone.now()
    # Keyed by the UUID, not its spelling: one event twice in a batch is recorded once.
    unique: dict[uuid.UUID, Event] = {}
    for event in events:
        unique.setdefault(uuid.UUID(event.event_id), event)
    inserted = upsert(
        InboxEvent,
        fields=_COLUMNS,
        # In key order, so two workers inserting overlapping batches (a
        # redelivery racing its first delivery) wait for each other instead
        # of deadlocking.
        rows=(
            (consumer, event.event_id, event.event_type, event.correlation_id, now)
            for _, event in sorted(unique.items())
        ),
        conflict=("consumer", "event_id"),
        returning=("event_id",),
    )
    event_id = InboxEvent._meta.get_field("event_id")
    recorded = {event_id.to_python(value) for (value,) in inserted}
    return [event for key, event in unique.items() if key in recorded]


def _new_facts(consumer: str, events: list[Event]) -> list[Event]:
    """The events whose fact (Event.key) this consumer has not applied, the
    first of each; recorded in one statement, as _record() does. An event
    without a key is its own fact."""
    now = timezone.now()
    first: dict[tuple[str, str], Event] = {}
    for event in events:
        if event.key is not None:
            first.setdefault((event.event_type, event.key), event)
    if not first:
        return events
    inserted = upsert(
        InboxFact,
        fields=_FACT_COLUMNS,
        # In key order, for the reason _record() inserts in id order.
        rows=(
            (consumer, event_type, key, event.event_id, now)
            for (event_type, key), event in sorted(first.items())
        ),
        conflict=("consumer", "event_type", "key"),
        returning=("event_type", "key"),
    )
    # By identity: an Event's payload (a protobuf message) is not hashable.
    new = {id(first[(event_type, key)]) for event_type, key in inserted}
    fresh = []
    for event in events:
        if event.key is None or id(event) in new:
            fresh.append(event)
        else:
            log.warning(
                "%s: %s of %s was applied before under another event id; event %s changes nothing",
                consumer,
                event.event_type,
                event.key,
                event.event_id,
                extra={"correlation_id": event.correlation_id},
            )
    return fresh
