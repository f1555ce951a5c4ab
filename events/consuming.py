"""Consuming events: every decision, once, for every transport.

A driver (events.celery_consumer, recommender.events_consumer) hands over
what it receives as Deliveries; an EventQueue decides, with no broker, and
the driver does what it says (ack, requeue, or park: publish the body with
``Decision.parked`` to the dead-letter exchange, confirmed, then ack), then
reports each message settled, which the queue logs and counts.

Events of one type are applied in one transaction: one commit for many is
what lets a consumer keep up with a burst. A batch that fails is applied
again one event at a time, so a poison event costs the others a second try,
never their outcome. While what the handlers depend on is down (the
database, the mail server), failures say nothing about the events: batches
are held, unsettled, and tried again after a growing wait, so an outage
spends none of their deliveries (requeued, each would soon be parked).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, Generic, Protocol, TypedDict, TypeVar, cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, StatusCode

from events.contracts import CONTENT_TYPE, Event, MalformedEvent, unwrap
from events.dead_letters import DELIVERY_COUNT_HEADER, is_last_delivery, parked_headers
from events.metrics import DEAD_LETTERED, HANDLED
from events.tracing import SpanKind, extracted, tracer, tracing_disabled

log = logging.getLogger(__name__)

# Set by the broker on every message read from a stream: its place there.
STREAM_OFFSET_HEADER = "x-stream-offset"

H = TypeVar("H")
H_contra = TypeVar("H_contra", contravariant=True)
M = TypeVar("M")

# A marketplace handler applies a batch of events of one type, all or nothing.
Handler = Callable[[Sequence[Event]], None]
Getter = Callable[[str], object]


class ApplyBatch(Protocol[H_contra]):
    def __call__(self, consumer: str, events: Sequence[Event], handler: H_contra, /) -> set[str]:
        """Apply events of one type with ``handler`` and record their ids (inbox),
        all or nothing (raises); returns the ids new to it."""


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
    UNAVAILABLE = "unavailable"  # what its handler needs is down: held
    SKIPPED = "skipped"  # read from a stream, which can neither requeue nor park


class Properties(TypedDict, total=False):
    """A message's properties, as aio-pika's Message and kombu's publish name them."""

    content_type: str
    content_encoding: str
    message_id: str
    correlation_id: str
    type: str
    timestamp: datetime
    delivery_mode: int
    # AMQP header values are of any type the protocol carries (events.dead_letters).
    headers: dict[str, Any]


# The properties a delivery keeps: what a log line or a parked copy needs.
DELIVERED = (
    "content_type",
    "content_encoding",
    "message_id",
    "correlation_id",
    "type",
    "timestamp",
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One received message, as far as deciding and parking it need."""

    body: bytes
    headers: Mapping[str, object] | None = None
    properties: Properties = field(default_factory=Properties)


def delivery(body: bytes, headers: Mapping[str, object] | None, get: Getter) -> Delivery:
    """A Delivery of a message whose properties ``get(name)`` reads."""
    properties = {name: value for name in DELIVERED if (value := get(name))}
    return Delivery(body, headers, cast(Properties, properties))


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    result: Result
    reason: str = ""  # for PARK, stored with the parked message
    event: Event | None = None
    # For PARK: the properties to publish the body with to the dead-letter
    # exchange, routed by the queue's name.
    parked: Properties | None = None


@dataclass(frozen=True, slots=True)
class Settle(Generic[M]):
    message: M  # the driver's
    delivery: Delivery
    decision: Decision


@dataclass(frozen=True, slots=True)
class Step(Generic[M]):
    settle: list[Settle[M]] = field(default_factory=list)  # now, in the order delivered
    retry_in: float | None = None  # some are held: call retry_held() after this many seconds


class Backoff:
    """Waits doubling from ``first`` up to ``last``; ``reset()`` after a success."""

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


class EventQueue(Generic[H, M]):
    """The decisions for one consumer's queue (or stream).

    ``handlers`` maps event types to what ``apply_batch`` applies them with.
    ``dependencies_up()`` tells, after a failure, whether what the handlers
    need can be reached; give it only from a driver that can call
    ``retry_held()`` later, as ``Step.retry_in`` says. ``traced=False`` (by
    default, when OTEL_SDK_DISABLED is true): no span is made for an event
    or a batch.
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
        log_each: bool = False,
        traced: bool | None = None,
    ) -> None:
        self.consumer = consumer
        self.queue = queue
        self.handlers = handlers
        self.apply_batch = apply_batch
        self.delivery_limit = delivery_limit
        self.batch_size = batch_size
        self.dependencies_up = dependencies_up
        self.backoff = Backoff(*outage_waits)
        self.stream = stream  # read from a stream: see decide_history()
        # EVENTS_LOG_EACH: an INFO line per event applied, not one per batch.
        self.log_each = log_each
        self.traced = not tracing_disabled() if traced is None else traced
        self.results: Counter[str] = Counter()  # messages settled, by result
        self._pending: list[tuple[M, Delivery]] = []
        # Batches waiting for a dependency, in the order they came.
        self.held: list[list[tuple[M, Delivery]]] = []
        self._down: bool | None = None  # asked once per decision, after a failure

    def add(self, message: M, delivery: Delivery) -> bool:
        """True when the batch is full: take() it now (else when the driver's timer fires)."""
        self._pending.append((message, delivery))
        return len(self._pending) >= self.batch_size

    def take(self) -> list[tuple[M, Delivery]]:
        batch, self._pending = self._pending, []
        return batch

    def discard(self) -> None:
        """Forget pending and held messages: their channel is closing, and the
        broker delivers them again."""
        self._pending, self.held = [], []

    def handle(self, batch: list[tuple[M, Delivery]]) -> Step[M]:
        if self.held:  # behind the batches already waiting
            self.held.append(batch)
            return Step()
        return self._apply([batch])

    def retry_held(self) -> Step[M]:
        if not self.held:
            return Step()
        self._down = None
        if self._is_down():
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

    def _is_down(self) -> bool:
        """After a failure: is it the dependencies'? A check that breaks says
        no, so nothing waits on a bug in it."""
        if self._down is None:
            try:
                self._down = self.dependencies_up is not None and not self.dependencies_up()
            except Exception:
                log.exception("events: %s: checking its dependencies failed", self.consumer)
                self._down = False
        return self._down

    def decide(self, deliveries: Sequence[Delivery]) -> list[Decision]:
        """One Decision per delivery, in their order (UNAVAILABLE: to hold)."""
        self._down = None
        decided: dict[int, Decision] = {}
        groups: dict[str, list[tuple[int, Event]]] = {}
        for index, delivery in enumerate(deliveries):
            try:
                event = unwrap(delivery.body)
            except MalformedEvent as exc:
                decided[index] = Decision(Action.PARK, Result.MALFORMED, f"malformed: {exc}")
            except Exception as exc:  # the decoder failing in a way unwrap() does not name
                decided[index] = self._failed(None, delivery, exc)
            else:
                if event.event_type in self.handlers:
                    groups.setdefault(event.event_type, []).append((index, event))
                else:  # bound by an older topology, or sent here by hand
                    reason = f"unhandled: {self.consumer} has no handler for {event.event_type}"
                    decided[index] = Decision(Action.PARK, Result.UNHANDLED, reason, event)
        # Each event is processed in a span of the trace it was published in.
        spans = self._spans(groups, deliveries) if self.traced and not self.stream else {}
        for event_type, group in groups.items():
            self._apply_group(group, self.handlers[event_type], deliveries, decided, spans)
        for index, span in spans.items():
            _end(span, decided[index])
        decisions = [
            replace(d, parked=self._parked(deliveries[i], d.reason))
            if d.action is Action.PARK
            else d
            for i, d in sorted(decided.items())
        ]
        if not self.stream and not self.log_each:  # a catch-up says it once, at its end
            self._log_applied(decisions)
        return decisions

    def _log_applied(self, decisions: Sequence[Decision]) -> None:
        """One INFO line for what a batch applied: a burst (a catalog loaded)
        is a few lines, not one per event; each event's is DEBUG (settled())."""
        applied = [d.event for d in decisions if d.result is Result.APPLIED and d.event]
        duplicates = sum(d.result is Result.DUPLICATE for d in decisions)
        if not applied and not duplicates:
            return
        if len(applied) == 1:
            what = f"{applied[0].event_type} {applied[0].event_id}"
        else:
            kinds = Counter(event.event_type for event in applied)
            what = f"{len(applied)} events ({', '.join(f'{n} {t}' for t, n in kinds.items())})"
        ids = {_trace_id(event) for event in applied}
        log.info(
            "events: %s applied %s%s",
            self.consumer,
            what,
            f"; {duplicates} already applied" if duplicates else "",
            extra={"trace_id": ids.pop() if len(ids) == 1 else "-"},
        )

    def _spans(
        self, groups: Mapping[str, list[tuple[int, Event]]], deliveries: Sequence[Delivery]
    ) -> dict[int, Span]:
        """A "process" span per event, child of the publish its headers name."""
        return {
            index: tracer.start_span(
                f"process {event.event_type}",
                context=extracted(deliveries[index].headers),
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": self.queue,
                    "messaging.consumer.group.name": self.consumer,
                    "messaging.message.id": event.event_id,
                },
            )
            for group in groups.values()
            for index, event in group
        }

    def _batch_span(
        self, group: list[tuple[int, Event]], spans: Mapping[int, Span]
    ) -> AbstractContextManager[object]:
        """The batch's own span, linked to each event's: its statements nest there."""
        if not self.traced:
            return nullcontext()
        links = [Link(spans[i].get_span_context()) for i, _ in group if i in spans]
        return tracer.start_as_current_span(
            f"apply {len(group)} events", context=Context(), links=links
        )

    def _apply_group(
        self,
        group: list[tuple[int, Event]],
        handler: H,
        deliveries: Sequence[Delivery],
        decided: dict[int, Decision],
        spans: Mapping[int, Span],
    ) -> None:
        if len(group) > 1 and not self._down:
            try:
                with self._batch_span(group, spans):
                    applied = set(self.apply_batch(self.consumer, [e for _, e in group], handler))
            except Exception as exc:  # find the culprit, one event at a time
                if not self._is_down():
                    log.warning(
                        "%s: a batch of %d failed (%s); applying them one at a time",
                        self.consumer,
                        len(group),
                        failure_reason(exc),
                    )
            else:
                for index, event in group:
                    decided[index] = _applied(event, applied)
                    # The same event twice in a batch: applied once, then a duplicate.
                    applied.discard(event.event_id)
                return
        for index, event in group:
            if self._down:  # found down by a failure before: not tried
                decided[index] = Decision(Action.REQUEUE, Result.UNAVAILABLE, "", event)
                continue
            try:
                with _current(spans.get(index)):
                    applied = self.apply_batch(self.consumer, [event], handler)
                decided[index] = _applied(event, applied)
            except Exception as exc:  # a handler's failure is data for the operator
                if self._is_down():
                    reason = failure_reason(exc)
                    decided[index] = Decision(Action.REQUEUE, Result.UNAVAILABLE, reason, event)
                else:
                    decided[index] = self._failed(event, deliveries[index], exc)

    def _failed(self, event: Event | None, delivery: Delivery, exc: Exception) -> Decision:
        reason = failure_reason(exc)
        if is_last_delivery(delivery.headers, self.delivery_limit):
            return Decision(Action.PARK, Result.FAILED, f"failed: {reason}", event)
        log.warning(
            "%s failed on %s %s, will retry: %s",
            self.consumer,
            event.event_type if event else delivery.properties.get("type", "?"),
            event.event_id if event else delivery.properties.get("message_id", "?"),
            reason,
            extra={"trace_id": _trace_id(event)},
        )
        return Decision(Action.REQUEUE, Result.RETRY, reason, event)

    def _parked(self, delivery: Delivery, reason: str) -> Properties:
        """The parked message's properties: the delivered ones, and why."""
        # A message the broker returns is matched to its publish by id.
        parked = Properties(content_type=CONTENT_TYPE, content_encoding="binary")
        parked.update(delivery.properties)
        parked["delivery_mode"] = 2  # persistent
        parked.setdefault("message_id", str(uuid.uuid4()))
        parked["headers"] = parked_headers(
            delivery.headers, reason=reason, consumer=self.consumer, queue=self.queue
        )
        return parked

    def decide_history(self, deliveries: Sequence[Delivery]) -> list[Decision]:
        """decide() for a stream, which can neither requeue nor park: a failing
        event is tried again at once, as often as a queue would deliver it,
        then SKIPPED, as a malformed one is at once (the queues parked it or
        applied it; an operator can send it again)."""
        decided: dict[int, Decision] = {}
        pending = list(range(len(deliveries)))
        for attempt in range(self.delivery_limit):
            again = [
                replace(deliveries[i], headers={DELIVERY_COUNT_HEADER: attempt}) for i in pending
            ]
            decided.update(zip(pending, self.decide(again), strict=True))
            pending = [i for i in pending if decided[i].action is Action.REQUEUE]
            if not pending:
                break
        return [
            Decision(Action.ACK, Result.SKIPPED, d.reason, d.event)
            if d.action is Action.PARK
            else d
            for _, d in sorted(decided.items())
        ]

    def settled(self, delivery: Delivery, decision: Decision) -> None:
        """Log and count a message the driver has settled as ``decision`` said."""
        self.results[decision.result] += 1
        event = decision.event
        event_id = event.event_id if event else delivery.properties.get("message_id", "?")
        if self.stream:  # a catch-up reads millions: only what it skips is news
            if decision.result is Result.SKIPPED:
                offset = (delivery.headers or {}).get(STREAM_OFFSET_HEADER, "?")
                log.error(
                    "events: skipped %s at offset %s of %s: %s",
                    *(event_id, offset, self.queue, decision.reason),
                )
            return
        # What was applied is in decide()'s line for its batch; the rest is news.
        quiet = not self.log_each and decision.result in (Result.APPLIED, Result.DUPLICATE)
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "event consumer=%s type=%s id=%s result=%s%s",
            self.consumer,
            event.event_type if event else delivery.properties.get("type", "?"),
            event_id,
            decision.result,
            f" reason={decision.reason!r}" if decision.reason else "",
            extra={"trace_id": _trace_id(event)},
        )
        event_type = event.event_type if event else "malformed"
        HANDLED.labels(self.consumer, event_type, decision.result).inc()
        if decision.action is Action.PARK:
            DEAD_LETTERED.labels(self.consumer).inc()


def _trace_id(event: Event | None) -> str:
    """The trace an event was published in: its envelope's correlation id."""
    return (event.correlation_id if event else "") or "-"


def _current(span: Span | None) -> AbstractContextManager[object]:
    return nullcontext() if span is None else trace.use_span(span, end_on_exit=False)


def _end(span: Span, decision: Decision) -> None:
    span.set_attribute("bookstore.event.result", decision.result.value)
    if decision.action is not Action.ACK:
        span.set_status(StatusCode.ERROR, decision.reason or decision.result.value)
    span.end()


def _applied(event: Event, applied: set[str]) -> Decision:
    result = Result.APPLIED if event.event_id in applied else Result.DUPLICATE
    return Decision(Action.ACK, result, event=event)
