"""Consuming events: every decision, once, for every transport.

A driver (events.celery_consumer, recommender.events_consumer) receives
messages and hands each over as a Delivery; an EventQueue decides, without
a broker, what becomes of them, and the driver does what it says: ack,
requeue, or park (publish ``Decision.parked`` with the body to the
dead-letter exchange, confirmed, then ack), and then reports each settled
message back, which logs it and counts it.

Messages come in batches so that a consumer can commit many events in one
transaction: one commit, and one round trip per statement instead of one per
event, is what lets a consumer keep up with a burst. A batch that fails is
applied again one event at a time, so one poison event costs the others a
second try, never their outcome.

While what a queue's handlers depend on is down (the database; the mail
server for e-mails), failures say nothing about the events: the queue holds
its batches, unsettled, and the driver asks again after a growing wait, so
an outage spends none of the events' deliveries (requeued at once, each
would reach the delivery limit within a second and be parked).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum, StrEnum
from typing import Generic, Protocol, TypedDict, TypeVar

from events.contracts import CONTENT_TYPE, Event, MalformedEvent, unwrap
from events.correlation import correlation
from events.dead_letters import DELIVERY_COUNT_HEADER, is_last_delivery, parked_headers
from events.metrics import DEAD_LETTERED, HANDLED

log = logging.getLogger(__name__)

H = TypeVar("H")
H_contra = TypeVar("H_contra", contravariant=True)
M = TypeVar("M")

# A marketplace handler applies a batch of events of one type, all or nothing.
Handler = Callable[[Sequence[Event]], None]


class ApplyBatch(Protocol[H_contra]):
    """Applies events of one type with ``handler``, all or nothing (raises on
    failure), recording each id (inbox); returns the ids applied now, the
    others having been applied before."""

    def __call__(self, consumer: str, events: Sequence[Event], handler: H_contra, /) -> set[str]:
        """Apply and record them in one transaction."""


class Action(Enum):
    ACK = "ack"
    REQUEUE = "requeue"
    PARK = "park"


class Result(StrEnum):
    """What became of an event: the ``result`` label of events_handled."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    MALFORMED = "malformed"
    UNHANDLED = "unhandled"
    FAILED = "failed"
    RETRY = "retry"
    # Not applied: what its handler needs is down (held, never settled so).
    UNAVAILABLE = "unavailable"
    # Read from a stream, which can neither requeue nor park: passed over.
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One received message, as far as deciding and parking it need."""

    body: bytes
    headers: Mapping[str, object] | None = None
    message_id: str | None = None
    correlation_id: str | None = None
    type: str | None = None
    content_type: str | None = None
    content_encoding: str | None = None
    timestamp: datetime | None = None


class Parked(TypedDict, total=False):
    """A parked message's properties, as aio-pika's Message and kombu's publish name them."""

    headers: dict[str, object]
    content_type: str
    content_encoding: str
    delivery_mode: int
    message_id: str
    correlation_id: str
    type: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    result: Result
    # For PARK: why, stored with the parked message; for REQUEUE, the failure.
    reason: str = ""
    event: Event | None = None
    # For PARK: the parked message's properties, for the driver to publish
    # with the body to the dead-letter exchange, routed by the queue's name.
    parked: Parked | None = None


@dataclass(frozen=True, slots=True)
class Settle(Generic[M]):
    """A driver's message, and what to do with it."""

    message: M
    delivery: Delivery
    decision: Decision


@dataclass(frozen=True, slots=True)
class Step(Generic[M]):
    # In the order delivered; the driver settles them all now.
    settle: list[Settle[M]] = field(default_factory=list)
    # Some are held: call retry_held() after this many seconds.
    retry_in: float | None = None


class Backoff:
    """Waits doubling from ``first`` up to ``last``; ``reset()`` after a success.

    A few lines of our own: tenacity's wait functions expect its retry loop's
    state, and ours are loops (a reconnect, a timer re-armed) it does not run.
    """

    def __init__(self, first: float, last: float) -> None:
        self.first = min(first, last)
        self.last = last
        self._next = self.first

    def reset(self) -> None:
        self._next = self.first

    def next(self) -> float:
        wait = self._next
        self._next = min(wait * 2, self.last)
        return wait


def failure_reason(exc: BaseException) -> str:
    """How a failure is named in logs, decisions and parked messages' headers."""
    return f"{type(exc).__name__}: {exc}"


class _Dependencies:
    """Asked at most once per decision on a batch, after the first failure."""

    def __init__(self, consumer: str, up: Callable[[], bool] | None) -> None:
        self._consumer = consumer
        self._up = up
        self._down: bool | None = None

    def down(self) -> bool:
        """Asked after a failure: is it theirs?"""
        if self._up is None:
            return False
        if self._down is None:
            try:
                self._down = not self._up()
            except Exception:  # a held batch must not wait on a bug: up
                log.exception("events: %s: checking its dependencies failed", self._consumer)
                self._down = False
        return self._down

    @property
    def known_down(self) -> bool:
        return self._down is True


class EventQueue(Generic[H, M]):
    """The decisions for one consumer's queue (or stream).

    ``handlers`` maps event types to what ``apply_batch`` applies them with.
    ``dependencies_up()`` tells, after a batch failed, whether what the
    handlers need can be reached; when it cannot, that batch and every later
    one wait (see the module's docstring). Only a driver that can call
    ``retry_held()`` later should give it.
    """

    def __init__(
        self,
        *,
        consumer: str,
        queue: str,
        handlers: Mapping[str, H],
        apply_batch: ApplyBatch[H],
        delivery_limit: int,
        batch_size: int = 1,
        dependencies_up: Callable[[], bool] | None = None,
        outage_waits: tuple[float, float] = (0.5, 30.0),
        stream: bool = False,
    ) -> None:
        self.consumer = consumer
        self.queue = queue
        self.handlers = handlers
        self.apply_batch = apply_batch
        self.delivery_limit = delivery_limit
        self.batch_size = batch_size
        self.dependencies_up = dependencies_up
        self.backoff = Backoff(*outage_waits)
        # Read from a stream: see decide_history().
        self.stream = stream
        # Messages settled, by result.
        self.results: Counter[str] = Counter()
        self._pending: list[tuple[M, Delivery]] = []
        # Batches waiting for a dependency, in the order they came.
        self.held: list[list[tuple[M, Delivery]]] = []

    # --- batching: the driver adds, and takes when full or when its timer fires

    def add(self, message: M, delivery: Delivery) -> bool:
        """True when the batch is full: take() it now."""
        self._pending.append((message, delivery))
        return len(self._pending) >= self.batch_size

    def take(self) -> list[tuple[M, Delivery]]:
        batch, self._pending = self._pending, []
        return batch

    def discard(self) -> None:
        """Forget pending and held messages (their channel is closing: the
        broker delivers them again)."""
        self._pending, self.held = [], []

    # --- deciding

    def handle(self, batch: list[tuple[M, Delivery]]) -> Step[M]:
        if self.held:  # behind the batches already waiting
            self.held.append(batch)
            return Step()
        return self._apply([batch])

    def retry_held(self) -> Step[M]:
        if not self.held:
            return Step()
        if _Dependencies(self.consumer, self.dependencies_up).down():
            wait = self.backoff.next()
            log.warning(
                "events: %s: still unavailable (%d batch(es) held); next try in %.1fs",
                self.consumer,
                len(self.held),
                wait,
            )
            return Step(retry_in=wait)
        log.info("events: %s: back; applying %d held batch(es)", self.consumer, len(self.held))
        held, self.held = self.held, []
        return self._apply(held)

    def _apply(self, batches: list[list[tuple[M, Delivery]]]) -> Step[M]:
        settle: list[Settle[M]] = []
        for n, batch in enumerate(batches):
            decisions = self.decide([delivery for _, delivery in batch])
            if any(d.result is Result.UNAVAILABLE for d in decisions):
                self.held = batches[n:]
                self.backoff.reset()
                wait = self.backoff.next()
                log.warning(
                    "events: %s: a dependency is unavailable; holding %d message(s) and every"
                    " batch after them, unsettled; next try in %.1fs",
                    self.consumer,
                    len(batch),
                    wait,
                )
                return Step(settle, wait)
            settle += [Settle(m, d, c) for (m, d), c in zip(batch, decisions, strict=True)]
        return Step(settle)

    def decide(self, deliveries: Sequence[Delivery]) -> list[Decision]:
        """One Decision per delivery, in their order.

        Events of one type go to ``apply_batch`` together; if that raises,
        each is applied again alone, and only the ones that fail alone are
        retried or parked, unless ``dependencies_up()`` then says the failure
        is not the events' (each not applied is UNAVAILABLE).
        """
        dependencies = _Dependencies(self.consumer, self.dependencies_up)
        decisions: list[Decision | None] = [None] * len(deliveries)
        groups: dict[str, list[tuple[int, Event]]] = {}
        for index, delivery in enumerate(deliveries):
            try:
                event = unwrap(delivery.body)
            except MalformedEvent as exc:
                decisions[index] = Decision(Action.PARK, Result.MALFORMED, f"malformed: {exc}")
            except Exception as exc:  # the decoder failing in a way unwrap() does not name
                decisions[index] = self._failed(None, delivery, exc)
            else:
                if event.event_type in self.handlers:
                    groups.setdefault(event.event_type, []).append((index, event))
                else:  # bound by an older topology, or sent here by hand
                    reason = f"unhandled: {self.consumer} has no handler for {event.event_type}"
                    decisions[index] = Decision(Action.PARK, Result.UNHANDLED, reason, event)
        ids = {d.correlation_id or "-" for d in deliveries}
        with correlation(ids.pop() if len(ids) == 1 else "-"):
            for event_type, group in groups.items():
                handler = self.handlers[event_type]
                for index, decision in self._apply_group(group, handler, deliveries, dependencies):
                    decisions[index] = decision
        return [
            replace(d, parked=self._parked(delivery, d.reason)) if d.action is Action.PARK else d
            for delivery, d in zip(deliveries, decisions, strict=True)
            if d is not None
        ]

    def _apply_group(
        self,
        group: list[tuple[int, Event]],
        handler: H,
        deliveries: Sequence[Delivery],
        dependencies: _Dependencies,
    ) -> list[tuple[int, Decision]]:
        if dependencies.known_down:  # since an earlier group failed: not tried
            return [(index, _unavailable(event, "a dependency is down")) for index, event in group]
        if len(group) > 1:
            events = [event for _, event in group]
            try:
                applied = set(self.apply_batch(self.consumer, events, handler))
            except Exception as exc:  # find the culprit below, one event at a time
                if dependencies.down():
                    return [(i, _unavailable(e, failure_reason(exc))) for i, e in group]
                log.warning(
                    "%s: a batch of %d failed (%s); applying them one at a time",
                    self.consumer,
                    len(events),
                    failure_reason(exc),
                )
            else:
                decided = []
                for index, event in group:
                    decided.append((index, _applied(event, applied)))
                    # The same event twice in a batch: applied once, then a duplicate.
                    applied.discard(event.event_id)
                return decided
        decided = []
        for index, event in group:
            if dependencies.known_down:  # since an event before this one failed
                decided.append((index, _unavailable(event, "a dependency is down")))
                continue
            try:
                applied = self.apply_batch(self.consumer, [event], handler)
            except Exception as exc:  # a handler's failure is data for the operator
                if dependencies.down():
                    decided.append((index, _unavailable(event, failure_reason(exc))))
                else:
                    decided.append((index, self._failed(event, deliveries[index], exc)))
                continue
            decided.append((index, _applied(event, applied)))
        return decided

    def _failed(self, event: Event | None, delivery: Delivery, exc: Exception) -> Decision:
        reason = failure_reason(exc)
        if is_last_delivery(delivery.headers, self.delivery_limit):
            return Decision(Action.PARK, Result.FAILED, f"failed: {reason}", event)
        log.warning(
            "%s failed on %s %s, will retry: %s",
            self.consumer,
            event.event_type if event else delivery.type or "?",
            event.event_id if event else delivery.message_id or "?",
            reason,
            extra={"correlation_id": event.correlation_id if event else "-"},
        )
        return Decision(Action.REQUEUE, Result.RETRY, reason, event)

    def _parked(self, delivery: Delivery, reason: str) -> Parked:
        """The parked message's properties: the delivered ones, and why."""
        parked = Parked(
            headers=parked_headers(
                delivery.headers, reason=reason, consumer=self.consumer, queue=self.queue
            ),
            content_type=delivery.content_type or CONTENT_TYPE,
            content_encoding=delivery.content_encoding or "binary",
            delivery_mode=2,  # persistent
            # A message the broker returns is matched to its publish by id.
            message_id=delivery.message_id or str(uuid.uuid4()),
        )
        if delivery.correlation_id:
            parked["correlation_id"] = delivery.correlation_id
        if delivery.type:
            parked["type"] = delivery.type
        if delivery.timestamp:
            parked["timestamp"] = delivery.timestamp
        return parked

    def decide_history(self, deliveries: Sequence[Delivery]) -> list[Decision]:
        """decide() for events read from a stream, which can neither requeue
        nor park: one that fails is tried again at once, as many times as a
        queue would deliver it, and then SKIPPED, as a malformed one is at
        once (the queues that had it parked or applied it; an operator can
        send it again)."""
        decisions: list[Decision] = [Decision(Action.ACK, Result.APPLIED)] * len(deliveries)
        pending = list(range(len(deliveries)))
        for attempt in range(self.delivery_limit):
            tried = self.decide(
                [replace(deliveries[i], headers={DELIVERY_COUNT_HEADER: attempt}) for i in pending]
            )
            for i, decision in zip(pending, tried, strict=True):
                decisions[i] = decision
            pending = [i for i in pending if decisions[i].action is Action.REQUEUE]
            if not pending:
                break
        return [
            Decision(Action.ACK, Result.SKIPPED, d.reason, d.event)
            if d.action is Action.PARK
            else d
            for d in decisions
        ]

    # --- after the driver settled a message

    def settled(self, delivery: Delivery, decision: Decision) -> None:
        """Log and count a message the driver has settled as ``decision`` said."""
        self.results[decision.result] += 1
        event = decision.event
        event_id = event.event_id if event else delivery.message_id or "?"
        if self.stream:  # a catch-up reads millions: only what it skips is news
            if decision.result is Result.SKIPPED:
                log.error(
                    "events: skipped %s at offset %s of %s: %s",
                    event_id,
                    (delivery.headers or {}).get("x-stream-offset", "?"),
                    self.queue,
                    decision.reason,
                )
            return
        event_type = event.event_type if event else delivery.type or "?"
        log.info(
            "event consumer=%s type=%s id=%s result=%s%s",
            self.consumer,
            event_type,
            event_id,
            decision.result,
            f" reason={decision.reason!r}" if decision.reason else "",
            extra={"correlation_id": event.correlation_id if event else "-"},
        )
        HANDLED.labels(
            consumer=self.consumer,
            event_type=event.event_type if event else "malformed",
            result=decision.result,
        ).inc()
        if decision.action is Action.PARK:
            DEAD_LETTERED.labels(consumer=self.consumer).inc()


def _unavailable(event: Event, reason: str) -> Decision:
    return Decision(Action.REQUEUE, Result.UNAVAILABLE, reason, event)


def _applied(event: Event, applied: set[str]) -> Decision:
    result = Result.APPLIED if event.event_id in applied else Result.DUPLICATE
    return Decision(Action.ACK, result, event=event)
