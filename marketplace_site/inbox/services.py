"""Applying an event exactly once per consumer."""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, transaction

from events.contracts import Event
from marketplace_site.inbox.models import InboxEvent


def inbox_apply(*, consumer: str, event: Event, handler: Callable[[Event], None]) -> bool:
    """Run ``handler`` and record the event in one transaction.

    Returns False, doing nothing, when this consumer already applied the
    event (a redelivery). If the handler raises, nothing is recorded.
    """
    with transaction.atomic():
        if InboxEvent.objects.filter(consumer=consumer, event_id=event.event_id).exists():
            return False
        try:
            # A savepoint: a concurrent worker inserting the same row first
            # makes this one a duplicate, not an error.
            with transaction.atomic():
                InboxEvent.objects.create(
                    consumer=consumer,
                    event_id=event.event_id,
                    event_type=event.event_type,
                    correlation_id=event.correlation_id,
                )
        except IntegrityError:
            return False
        handler(event)
    return True
