"""Deciding what to do with one delivered message: the consumer's plain core.

The transport (a Celery ConsumerStep here, aio-pika in the recommender) hands
over the body and headers; this module decodes, finds the handler, applies it
through an idempotent ``apply`` function and says what the transport must do
with the message. No broker or database code in here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from events.contracts import Event, MalformedEvent, unwrap
from events.dead_letters import is_last_delivery

log = logging.getLogger(__name__)

Handler = Callable[[Event], None]
# apply(consumer, event, handler) -> True if applied, False if already applied.
Apply = Callable[[str, Event, Handler], bool]


class Action(Enum):
    ACK = "ack"
    REQUEUE = "requeue"
    PARK = "park"


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    # For PARK: why, stored with the parked message.
    reason: str = ""
    # "applied", "duplicate", "ignored", "malformed", "failed", "retry".
    result: str = ""
    event: Event | None = None


def dispatch(
    *,
    consumer: str,
    body: bytes,
    headers: Mapping[str, Any] | None,
    handlers: Mapping[str, Handler],
    apply: Apply,
    delivery_limit: int,
) -> Outcome:
    try:
        event = unwrap(body)
    except MalformedEvent as exc:
        return Outcome(Action.PARK, reason=f"malformed: {exc}", result="malformed")
    handler = handlers.get(event.event_type)
    if handler is None:
        # Bound here by mistake or by an older topology: nothing to do with it.
        log.warning("%s has no handler for %s; acked", consumer, event.event_type)
        return Outcome(Action.ACK, result="ignored", event=event)
    try:
        applied = apply(consumer, event, handler)
    except Exception as exc:  # a handler's failure is data for the operator
        reason = f"{type(exc).__name__}: {exc}"
        if is_last_delivery(headers, delivery_limit):
            return Outcome(Action.PARK, reason=f"failed: {reason}", result="failed", event=event)
        log.warning(
            "%s failed on %s %s, will retry: %s",
            consumer,
            event.event_type,
            event.event_id,
            reason,
            extra={"correlation_id": event.correlation_id},
        )
        return Outcome(Action.REQUEUE, reason=reason, result="retry", event=event)
    return Outcome(Action.ACK, result="applied" if applied else "duplicate", event=event)
