"""Deciding what to do with delivered messages: the consumer's plain core.

The transport (a Celery ConsumerStep here, aio-pika in the recommender) hands
over bodies and headers; this module decodes them, finds each one's handler,
applies it through an idempotent ``apply_batch`` function and says what the
transport must do with each message. No broker or database code in here.

Messages come in batches so that a consumer can commit many events in one
transaction: one commit, and one round trip per statement instead of one per
event, is what lets a worker keep up with a burst. A batch that fails is
applied again one event at a time, so one poison event costs the others a
second try, never their outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from events.contracts import Event, MalformedEvent, unwrap
from events.dead_letters import is_last_delivery

log = logging.getLogger(__name__)

H = TypeVar("H")

# A marketplace handler applies a batch of events of one type, all or nothing.
Handler = Callable[[Sequence[Event]], None]
# apply_batch(consumer, events, handler) -> the ids of the events it applied
# now; the others had been applied before. All or nothing: raises on failure.
ApplyBatch = Callable[[str, Sequence[Event], Any], set[str]]


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


@dataclass(frozen=True, slots=True)
class Delivery:
    """One received message, as far as deciding its fate needs."""

    body: bytes
    headers: Mapping[str, Any] | None = None


@dataclass(slots=True)
class _Pending(Generic[H]):
    handler: H
    items: list[tuple[int, Event]]


# The result of an event not applied because what its handler needs is down.
UNAVAILABLE = "unavailable"


class _Dependencies:
    """Asked at most once per dispatch, after the first failure."""

    def __init__(self, up: Callable[[], bool] | None) -> None:
        self._up = up
        self._down: bool | None = None

    def down(self) -> bool:
        """Asked after a failure: is it theirs?"""
        if self._up is None:
            return False
        if self._down is None:
            self._down = not self._up()
        return self._down

    @property
    def known_down(self) -> bool:
        """Found down by an earlier failure of this dispatch."""
        return self._down is True


def dispatch_batch(
    *,
    consumer: str,
    deliveries: Sequence[Delivery],
    handlers: Mapping[str, H],
    apply_batch: ApplyBatch,
    delivery_limit: int,
    dependencies_up: Callable[[], bool] | None = None,
) -> list[Outcome]:
    """One Outcome per delivery, in their order.

    Events of one type go to ``apply_batch`` together; if that raises, each
    of them is applied again alone, and only the ones that fail alone are
    retried or parked. But if ``dependencies_up()`` says, after a failure,
    that what the handlers need is down, the failure is not the events': no
    event is tried alone or parked, and every one not applied is
    ``unavailable`` (a requeue, which a caller with a timer holds instead).
    """
    dependencies = _Dependencies(dependencies_up)
    outcomes: list[Outcome | None] = [None] * len(deliveries)
    pending: dict[str, _Pending[H]] = {}
    for index, delivery in enumerate(deliveries):
        try:
            event = unwrap(delivery.body)
        except MalformedEvent as exc:
            outcomes[index] = Outcome(Action.PARK, reason=f"malformed: {exc}", result="malformed")
            continue
        handler = handlers.get(event.event_type)
        if handler is None:
            # Bound here by mistake or by an older topology: nothing to do with it.
            log.warning("%s has no handler for %s; acked", consumer, event.event_type)
            outcomes[index] = Outcome(Action.ACK, result="ignored", event=event)
            continue
        pending.setdefault(event.event_type, _Pending(handler, [])).items.append((index, event))

    for group in pending.values():
        if dependencies.known_down:  # since an earlier group failed: not tried
            for index, event in group.items:
                outcomes[index] = _unavailable(event, "a dependency is down")
            continue
        if len(group.items) > 1:
            events = [event for _, event in group.items]
            try:
                applied = set(apply_batch(consumer, events, group.handler))
            except Exception as exc:  # find the culprit below, one event at a time
                if dependencies.down():
                    for index, event in group.items:
                        outcomes[index] = _unavailable(event, failure_reason(exc))
                    continue
                log.warning(
                    "%s: a batch of %d failed (%s: %s); applying them one at a time",
                    consumer,
                    len(events),
                    type(exc).__name__,
                    exc,
                )
            else:
                for index, event in group.items:
                    outcomes[index] = _applied(event, applied)
                    # The same event twice in a batch: applied once, then a duplicate.
                    applied.discard(event.event_id)
                continue
        for index, event in group.items:
            outcomes[index] = _apply_alone(
                consumer,
                event,
                group.handler,
                apply_batch,
                deliveries[index],
                delivery_limit,
                dependencies,
            )
    return [outcome for outcome in outcomes if outcome is not None]


def _apply_alone(
    consumer: str,
    event: Event,
    handler: Any,
    apply_batch: ApplyBatch,
    delivery: Delivery,
    delivery_limit: int,
    dependencies: _Dependencies,
) -> Outcome:
    if dependencies.known_down:  # since an event before this one failed
        return _unavailable(event, "a dependency is down")
    try:
        applied = apply_batch(consumer, [event], handler)
    except Exception as exc:  # a handler's failure is data for the operator
        if dependencies.down():
            return _unavailable(event, failure_reason(exc))
        return _failed(consumer, event, delivery.headers, exc, delivery_limit)
    return _applied(event, applied)


def failure_reason(exc: BaseException) -> str:
    """How a failure is named in logs, outcomes and parked messages' headers."""
    return f"{type(exc).__name__}: {exc}"


def _unavailable(event: Event, reason: str) -> Outcome:
    return Outcome(Action.REQUEUE, reason=reason, result=UNAVAILABLE, event=event)


def _applied(event: Event, applied: set[str]) -> Outcome:
    return Outcome(
        Action.ACK, result="applied" if event.event_id in applied else "duplicate", event=event
    )


def _failed(
    consumer: str,
    event: Event,
    headers: Mapping[str, Any] | None,
    exc: Exception,
    delivery_limit: int,
) -> Outcome:
    reason = failure_reason(exc)
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
