"""One event through the inbox, for tests (the worker applies batches)."""

from __future__ import annotations

from events.consuming import Handler
from events.contracts import Event
from marketplace_site.inbox.services import inbox_apply_batch


def inbox_apply(*, consumer: str, event: Event, handler: Handler) -> bool:
    """False, doing nothing, when the event was applied before."""
    return bool(inbox_apply_batch(consumer=consumer, events=[event], handler=handler))
