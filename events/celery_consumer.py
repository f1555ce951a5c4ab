"""The Celery side: a ConsumerStep that consumes the domain-event queues.

Domain events have their own queues (events.topology), never Celery's task
queue: a task consumer would reject them as unknown messages. This step adds
a kombu consumer per worker queue to the worker's connection, with a bounded
prefetch, hands their messages to events.dispatch in batches (one
transaction each), and turns each message's Outcome into an ack, a requeue,
or a park (republish to the dead-letter exchange, confirmed, then ack).

While what a queue's handlers depend on is down (the database; the mail
server for e-mails and vouchers), failures say nothing about the events: the
step holds that queue's batches, unsettled, and tries them again with a
growing wait, so an outage spends none of the events' deliveries (requeued
at once, each would reach EVENTS_DELIVERY_LIMIT within a second and be
parked). Other queues go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from celery import bootsteps
from kombu import Consumer, Exchange, Message, Producer, Queue, binding
from kombu.utils.imports import symbol_by_name

from events.correlation import correlation
from events.dead_letters import parked_headers
from events.dispatch import UNAVAILABLE, Action, ApplyBatch, Delivery, Outcome, dispatch_batch
from events.topology import DEAD_LETTER_QUEUE_ARGUMENTS, QueueSpec, Topology

log = logging.getLogger(__name__)

DEFAULT_PREFETCH = 64
DEFAULT_BATCH_SIZE = 32
# Seconds a batch waits for more messages; a lone event is late by at most this.
DEFAULT_BATCH_WAIT = 0.005
# Seconds between tries while a queue's dependency is down: doubling from the
# first, up to the last.
OUTAGE_RETRY_WAITS = (0.5, 30.0)


def kombu_queues(topology: Topology, spec: QueueSpec) -> tuple[Queue, Queue]:
    """The consumer queue (bound to its event types) and its dead-letter queue."""
    events = Exchange(topology.exchange, "topic", durable=True)
    dead = Exchange(topology.dead_letter_exchange, "direct", durable=True)
    queue = Queue(
        spec.name,
        bindings=[binding(events, routing_key=key) for key in spec.routing_keys],
        durable=True,
        queue_arguments=dict(spec.arguments),
    )
    parked = Queue(
        spec.dead_letter_queue,
        exchange=dead,
        routing_key=spec.name,
        durable=True,
        queue_arguments=dict(DEAD_LETTER_QUEUE_ARGUMENTS),
    )
    return queue, parked


@dataclass
class Outage:
    """A queue's dependency is down: the batches waiting for it, in the order they came."""

    wait: float
    held: list[Callable[[], None]] = field(default_factory=list)
    timer: Any = None


class EventConsumers:
    """What the step needs, in one object a test (or another app) can build.

    Each queue's messages are applied in batches of up to ``batch_size``: a
    batch is handled when it is full or ``batch_wait`` seconds after its first
    message, whichever comes first, and its messages are acked once its
    transaction has committed. Without an event loop to time the wait (a
    worker without a hub), every message is a batch of one.

    ``dependencies_up(consumer)`` tells, after a batch of that consumer
    failed, whether what its handlers need can be reached; when it cannot,
    that batch and every later one of the queue wait for it (see the module's
    docstring). Without it, or without a hub, a failure is always the events'
    own.
    """

    def __init__(
        self,
        *,
        topology: Topology,
        routes: Mapping[str, Mapping[str, Any]],
        apply_batch: ApplyBatch,
        prefetch: int = DEFAULT_PREFETCH,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_wait: float = DEFAULT_BATCH_WAIT,
        on_outcome: Callable[[str, Outcome], None] | None = None,
        dependencies_up: Callable[[str], bool] | None = None,
        outage_retry_waits: tuple[float, float] = OUTAGE_RETRY_WAITS,
    ) -> None:
        if prefetch < 1 or batch_size < 1 or batch_wait < 0:
            raise ValueError(
                f"prefetch ({prefetch}) and batch_size ({batch_size}) must be at least 1,"
                f" batch_wait ({batch_wait}) at least 0"
            )
        self.topology = topology
        self.routes = routes
        self.apply_batch = apply_batch
        self.prefetch = prefetch
        # A batch larger than the prefetch would never fill: it would always wait.
        self.batch_size = min(batch_size, prefetch)
        self.batch_wait = batch_wait
        self.on_outcome = on_outcome
        self.dependencies_up = dependencies_up
        self.outage_retry_waits = outage_retry_waits
        self.outages: dict[str, Outage] = {}
        self.hub: Any = None
        self.batches: list[Batch] = []
        # Set while batches are handled and settled; see _settling().
        self._settling_now = False

    def consumers(self, channel: Any, hub: Any = None) -> list[Consumer]:
        consumers = []
        self.batches = []
        self.hub = hub
        for n, (consumer_name, handlers) in enumerate(self.routes.items()):
            # A channel per queue: a batch is acked with one "multiple" ack,
            # which on a shared channel would ack other queues' messages too.
            if n:
                channel = channel.connection.channel()
            spec = self.topology.queue(consumer_name)
            queue, parked = kombu_queues(self.topology, spec)
            parked(channel).declare()
            batch = Batch(
                partial(self.handle, consumer_name, spec, handlers),
                size=self.batch_size if hub is not None else 1,
                wait=self.batch_wait,
                hub=hub,
                held_back=self.settling,
            )
            self.batches.append(batch)
            consumers.append(
                Consumer(
                    channel,
                    queues=[queue],
                    on_message=batch.add,
                    prefetch_count=self.prefetch,
                )
            )
        return consumers

    def discard_pending(self) -> None:
        """Forget unhandled and held messages (their channel is closing: the
        broker delivers them again)."""
        for batch in self.batches:
            batch.discard()
        outages, self.outages = self.outages, {}
        for outage in outages.values():
            if outage.timer is not None:
                outage.timer.cancel()

    def settling(self) -> bool:
        """Whether a batch is being handled and settled right now."""
        return self._settling_now

    @contextmanager
    def _settling(self) -> Iterator[None]:
        """Hold back the messages delivered meanwhile, and handle them after.

        Parking waits for the broker's confirm, and while py-amqp waits it
        hands over the deliveries that arrive. Handled there, a new batch of
        the same queue would be acked with one "multiple" ack covering this
        batch's messages not settled yet (one to requeue would be acked: lost),
        and a delivery during the retry of held batches would overtake them.
        """
        if self._settling_now:
            yield
            return
        self._settling_now = True
        try:
            yield
        finally:
            self._settling_now = False
            for batch in self.batches:
                batch.resume()

    def handle(
        self,
        consumer_name: str,
        spec: QueueSpec,
        handlers: Mapping[str, Any],
        messages: Sequence[Message],
    ) -> None:
        with self._settling():
            self._handle(consumer_name, spec, handlers, messages)

    def _handle(
        self,
        consumer_name: str,
        spec: QueueSpec,
        handlers: Mapping[str, Any],
        messages: Sequence[Message],
    ) -> None:
        again = partial(self.handle, consumer_name, spec, handlers, messages)
        outage = self.outages.get(consumer_name)
        if outage is not None:
            outage.held.append(again)  # behind the batches already waiting
            return
        # Only with a timer to try again later can a batch be held.
        can_hold = self.dependencies_up is not None and self.hub is not None
        ids = {m.properties.get("correlation_id") or "-" for m in messages}
        with correlation(ids.pop() if len(ids) == 1 else "-"):
            outcomes = dispatch_batch(
                consumer=consumer_name,
                deliveries=[Delivery(m.body, m.headers) for m in messages],
                handlers=handlers,
                apply_batch=self.apply_batch,
                delivery_limit=self.topology.delivery_limit,
                dependencies_up=partial(self._dependencies_up, consumer_name) if can_hold else None,
            )
        if any(o.result == UNAVAILABLE for o in outcomes):
            self._hold(consumer_name, again, len(messages))
            return
        for message, outcome in zip(messages, outcomes, strict=True):
            self.settle(consumer_name, spec, message, outcome)
        ack_all(messages)

    def _dependencies_up(self, consumer_name: str) -> bool:
        """The app's check; one that breaks counts as up, so failures are then
        the events' own, as without a check (a held batch must not wait on a bug)."""
        try:
            return self.dependencies_up(consumer_name)
        except Exception:
            log.exception("events: %s: checking its dependencies failed", consumer_name)
            return True

    def _hold(self, consumer_name: str, again: Callable[[], None], count: int) -> None:
        first_wait, _ = self.outage_retry_waits
        outage = self.outages[consumer_name] = Outage(wait=first_wait, held=[again])
        log.warning(
            "events: %s: a dependency is unavailable; holding %d message(s) and every"
            " batch after them, unsettled; next try in %.1fs",
            consumer_name,
            count,
            first_wait,
        )
        outage.timer = self.hub.call_later(first_wait, partial(self._retry_held, consumer_name))

    def _retry_held(self, consumer_name: str) -> None:
        outage = self.outages.get(consumer_name)
        if outage is None:
            return
        if not self._dependencies_up(consumer_name):
            _, last_wait = self.outage_retry_waits
            outage.wait = min(outage.wait * 2, last_wait)
            log.warning(
                "events: %s: still unavailable (%d batch(es) held); next try in %.1fs",
                consumer_name,
                len(outage.held),
                outage.wait,
            )
            outage.timer = self.hub.call_later(
                outage.wait, partial(self._retry_held, consumer_name)
            )
            return
        log.info("events: %s: back; applying %d held batch(es)", consumer_name, len(outage.held))
        del self.outages[consumer_name]
        with self._settling():
            for index, again in enumerate(outage.held):
                again()
                down_again = self.outages.get(consumer_name)
                if down_again is not None:  # the rest wait behind that batch
                    down_again.held.extend(outage.held[index + 1 :])
                    return

    def settle(
        self, consumer_name: str, spec: QueueSpec, message: Message, outcome: Outcome
    ) -> None:
        """Log, park or requeue the message as its outcome says; acks are left to
        ack_all, once the whole batch is settled."""
        event = outcome.event
        log.info(
            "event consumer=%s type=%s id=%s result=%s%s",
            consumer_name,
            event.event_type if event else message.properties.get("type", "?"),
            event.event_id if event else message.properties.get("message_id", "?"),
            outcome.result,
            f" reason={outcome.reason!r}" if outcome.reason else "",
            extra={"correlation_id": event.correlation_id if event else "-"},
        )
        if outcome.action is Action.PARK:
            self.park(message, spec, consumer_name, outcome.reason)
        elif outcome.action is Action.REQUEUE:
            message.requeue()
        if self.on_outcome is not None:
            self.on_outcome(consumer_name, outcome)

    def park(self, message: Message, spec: QueueSpec, consumer_name: str, reason: str) -> None:
        """Republish to the dead-letter queue; returns once the broker confirmed."""
        properties = message.properties
        Producer(message.channel).publish(
            message.body,
            exchange=self.topology.dead_letter_exchange,
            routing_key=spec.name,
            headers=parked_headers(
                message.headers, reason=reason, consumer=consumer_name, queue=spec.name
            ),
            content_type=message.content_type or "application/x-protobuf",
            content_encoding=message.content_encoding or "binary",
            delivery_mode=2,
            message_id=properties.get("message_id"),
            correlation_id=properties.get("correlation_id"),
            type=properties.get("type"),
            mandatory=True,
        )


def ack_all(messages: Sequence[Message]) -> None:
    """Ack every message of a batch not requeued, in one frame.

    The batch's queue has its channel to itself and a batch is settled
    whole before the next is handled, so the deliveries still unacked up to
    the batch's last are exactly the batch's own: one "multiple" ack on the
    last not requeued covers them (a requeued one is settled already).
    """
    for message in reversed(messages):
        if not message.acknowledged:
            message.ack(multiple=True)
            return


class Batch:
    """Messages of one queue waiting to be handled together."""

    def __init__(
        self,
        handle: Callable[[list[Message]], None],
        *,
        size: int,
        wait: float,
        hub: Any,
        held_back: Callable[[], bool] = lambda: False,
    ) -> None:
        self.handle = handle
        self.size = size
        self.wait = wait
        self.hub = hub
        # While this says so, messages only gather; resume() goes on after.
        self.held_back = held_back
        self.pending: list[Message] = []
        self.timer: Any = None

    def add(self, message: Message) -> None:
        self.pending.append(message)
        if self.held_back():
            return
        if len(self.pending) >= self.size:
            self.flush()
        elif self.timer is None:
            self.timer = self.hub.call_later(self.wait, self.flush)

    def resume(self) -> None:
        """What add() would have done for the messages gathered while held back."""
        if len(self.pending) >= self.size:
            self.flush()
        elif self.pending and self.timer is None:
            self.timer = self.hub.call_later(self.wait, self.flush)

    def flush(self) -> None:
        if self.held_back():
            self.timer = None  # fired: resume() takes it from here
            return
        messages = self.pending
        self.discard()
        if messages:
            self.handle(messages)

    def discard(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.pending = []


class DomainEventConsumerStep(bootsteps.ConsumerStep):
    """Registered on the Celery app. The app's ``events_consumers_factory``
    setting names (dotted path) a function returning the EventConsumers."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        factory = parent.app.conf.get("events_consumers_factory")
        self.event_consumers: EventConsumers | None = symbol_by_name(factory)() if factory else None

        self.hub: Any = None

    def start(self, c: Any) -> None:
        # The worker's event loop (None without one) times each batch's wait.
        self.hub = c.hub
        super().start(c)

    def stop(self, c: Any) -> None:
        self._discard_pending()
        super().stop(c)

    def shutdown(self, c: Any) -> None:
        self._discard_pending()
        super().shutdown(c)

    def _discard_pending(self) -> None:
        if self.event_consumers is not None:
            self.event_consumers.discard_pending()

    def get_consumers(self, channel: Any) -> list[Consumer]:
        if self.event_consumers is None:
            return []
        return self.event_consumers.consumers(channel, self.hub)
