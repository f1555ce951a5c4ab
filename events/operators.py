"""What an operator does with parked messages (list them, replay them), and
with past events (send them again to one consumer, a new replica say).

    python -m events dead-letters list [--consumer worker.emails] [--limit 20]
    python -m events dead-letters replay --consumer worker.emails [--event-id ID | --all]
    manage.py replay_events --consumer recommender.<instance>   (past events, from the outbox)
    manage.py replay_events --history                            (the same, to the history stream)

Listing does not consume: the messages go back to the dead-letter queue
when the listing channel closes. Replaying publishes a message to its
consumer's queue only (not to every consumer again), confirmed, and then
removes it from the dead-letter queue; the consumer's inbox makes a replay
of an already applied event a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, cast

from amqp.exceptions import NotFound
from kombu import Connection, Producer
from kombu.transport.base import StdChannel

from events.contracts import CONTENT_TYPE, MalformedEvent, unwrap
from events.dead_letters import CONSUMER_HEADER, DELIVERY_COUNT_HEADER, QUEUE_HEADER, REASON_HEADER
from events.topology import QueueSpec, StreamSpec, Topology

# Headers describing the parking; a replayed message starts afresh without them.
PARKING_HEADERS = {REASON_HEADER, CONSUMER_HEADER, QUEUE_HEADER, DELIVERY_COUNT_HEADER, "x-death"}


@dataclass(frozen=True)
class ParkedMessage:
    event_id: str
    event_type: str
    reason: str
    consumer: str
    size: int


class _Parked(Protocol):
    body: bytes
    headers: Mapping[str, Any] | None
    properties: Mapping[str, Any]
    delivery_tag: int


class _Declared(Protocol):
    message_count: int


class _Channel(Protocol):
    """What is used here of py-amqp's channel, as it is at run time: the
    stubs of kombu name only its abstract channel, py-amqp's differ from it."""

    def basic_get(self, queue: str, no_ack: bool) -> _Parked | None: ...
    def basic_ack(self, delivery_tag: int) -> None: ...
    def queue_declare(self, queue: str, *, passive: bool) -> _Declared: ...
    def close(self) -> None: ...


@contextmanager
def _channel(amqp_url: str) -> Iterator[_Channel]:
    with Connection(
        amqp_url, connect_timeout=10, transport_options={"confirm_publish": True}
    ) as conn:
        channel = cast(_Channel, conn.channel())
        try:
            yield channel
        finally:
            channel.close()


def _describe(message: _Parked, consumer: str) -> ParkedMessage:
    headers = message.headers or {}
    try:
        event = unwrap(message.body)
        event_id, event_type = event.event_id, event.event_type
    except MalformedEvent:
        event_id = message.properties.get("message_id") or "?"
        event_type = message.properties.get("type") or "?"
    return ParkedMessage(
        event_id=event_id,
        event_type=event_type,
        reason=str(headers.get(REASON_HEADER) or _death_reason(headers)),
        consumer=str(headers.get(CONSUMER_HEADER) or consumer),
        size=len(message.body),
    )


def _death_reason(headers: Mapping[str, Any]) -> str:
    # Parked by the broker itself (delivery limit reached without a consumer verdict).
    deaths = headers.get("x-death") or []
    return f"broker: {deaths[0].get('reason')}" if deaths else "unknown"


def one_line(text: str) -> str:
    """``text`` as one line and one tab-separated column: what producers put
    in a reason or a header (newlines, tabs, terminal escapes) is escaped as
    in a Python literal, and so is the backslash, so nothing is ambiguous."""
    return "".join(
        "\\\\" if char == "\\" else char if char.isprintable() else repr(char)[1:-1]
        for char in text
    )


def dead_letters(amqp_url: str, spec: QueueSpec, *, limit: int = 100) -> list[ParkedMessage]:
    found: list[ParkedMessage] = []
    with _channel(amqp_url) as channel:
        while len(found) < limit:
            message = channel.basic_get(spec.dead_letter_queue, no_ack=False)
            if message is None:
                break
            found.append(_describe(message, spec.name))
        # Closing the channel without acks returns every message to the queue.
    return found


def replay(
    amqp_url: str, spec: QueueSpec, *, event_id: str | None = None, everything: bool = False
) -> int:
    """Move parked messages (one event id, or all) back to their consumer's
    queue, which must exist (NoSuchQueue otherwise: nothing is moved).

    Only the messages parked when it starts are looked at: one the consumer
    parks again meanwhile (still malformed) waits for the next replay.
    """
    if not everything and not event_id:
        raise ValueError("say which: an event id, or all")
    replayed = 0
    with _channel(amqp_url) as channel:
        _require_queue(channel, spec.name)
        producer = Producer(cast(StdChannel, channel))
        for _ in range(_require_queue(channel, spec.dead_letter_queue)):
            message = channel.basic_get(spec.dead_letter_queue, no_ack=False)
            if message is None:
                break
            if not everything and _describe(message, spec.name).event_id != event_id:
                continue  # left unacked: it returns to the queue when we close
            headers = {k: v for k, v in (message.headers or {}).items() if k not in PARKING_HEADERS}
            # The default exchange routes by queue name: only this consumer sees
            # it again. Unroutable (the queue deleted since), the broker returns
            # it, which raises before the ack: it stays parked.
            producer.publish(
                message.body,
                exchange="",
                routing_key=spec.name,
                mandatory=True,
                headers=headers,
                content_type=message.properties.get("content_type"),
                content_encoding=message.properties.get("content_encoding"),
                delivery_mode=2,
                message_id=message.properties.get("message_id"),
                correlation_id=message.properties.get("correlation_id"),
                type=message.properties.get("type"),
            )
            channel.basic_ack(message.delivery_tag)
            replayed += 1
    return replayed


class NoSuchQueue(LookupError):
    """The consumer's queue does not exist (yet): nothing was sent."""


def _require_queue(channel: _Channel, name: str) -> int:
    """How many messages the queue holds; NoSuchQueue if there is none."""
    try:
        return channel.queue_declare(name, passive=True).message_count
    except NotFound as exc:
        raise NoSuchQueue(f"there is no queue {name}: {exc}") from None


@dataclass(frozen=True)
class PastEvent:
    event_id: str
    event_type: str
    correlation_id: str
    envelope: bytes


def send_to_queue(amqp_url: str, spec: QueueSpec | StreamSpec, events: Iterable[PastEvent]) -> int:
    """Publish ``events`` to ``spec``'s queue (or stream) only, in order, each
    confirmed, as the relay publishes them; returns how many. The queue must
    exist: a message to a queue that does not is dropped by the broker."""
    with _channel(amqp_url) as channel:
        _require_queue(channel, spec.name)
        producer = Producer(cast(StdChannel, channel))
        sent = 0
        for event in events:
            producer.publish(
                event.envelope,
                exchange="",  # the default exchange routes by queue name
                routing_key=spec.name,
                content_type=CONTENT_TYPE,
                content_encoding="binary",
                delivery_mode=2,
                message_id=event.event_id,
                correlation_id=event.correlation_id or None,
                type=event.event_type,
            )
            sent += 1
    return sent


def consumer_queues(topology: Topology, consumer: str | None) -> list[QueueSpec]:
    if consumer is None:
        return topology.worker_queues()
    if consumer.startswith("recommender."):
        return [topology.recommender_queue(consumer.removeprefix("recommender."))]
    return [topology.queue(consumer)]
