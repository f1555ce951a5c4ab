"""The Celery side: a ConsumerStep that consumes the domain-event queues.

Domain events have their own queues (events.topology), never Celery's task
queue: a task consumer would reject them as unknown messages. This step adds
a kombu consumer per worker queue to the worker's connection, with a bounded
prefetch, and drives an events.consuming.EventQueue per queue: it adds what
arrives, times the batch's wait and the retries of held batches on the
worker's event loop, and settles what the core decided.

Parking publishes through a connection of the step's own, with publisher
confirms: waiting for a confirm there never hands over the deliveries of the
consumer channels, so nothing arrives while a batch is being settled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Generic, Protocol, cast

from celery import bootsteps
from kombu import Connection, Consumer, Message, Producer, Queue
from kombu.utils.imports import symbol_by_name

from events.consuming import (
    Action,
    ApplyBatch,
    Delivery,
    EventQueue,
    H,
    Properties,
    Step,
    delivery,
)
from events.topology import Topology

log = logging.getLogger(__name__)

DEFAULT_PREFETCH = 64
DEFAULT_BATCH_SIZE = 32
# Seconds a batch waits for more messages; a lone event is late by at most this.
DEFAULT_BATCH_WAIT = 0.005
# Seconds between tries while a queue's dependency is down: doubling from the
# first, up to the last.
OUTAGE_RETRY_WAITS = (0.5, 30.0)


class Timer(Protocol):
    def cancel(self) -> None: ...


class Hub(Protocol):
    """The worker's event loop, as far as timing batches needs it."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...


# publish(body, routing_key, parked properties): returns once the broker confirmed.
Park = Callable[[bytes, str, Properties], None]


def delivery_of(message: Message) -> Delivery:
    # The step's consumers accept the raw body (no_ack off, no decoding): bytes.
    return delivery(cast(bytes, message.body), message.headers, message.properties.get)


class QueueDriver(Generic[H]):
    """One queue's messages through its EventQueue; without a hub (no event
    loop to time a wait), every message is a batch of one and nothing is held."""

    def __init__(
        self,
        core: EventQueue[H, Message],
        *,
        hub: Hub | None,
        batch_wait: float,
        park: Park,
    ) -> None:
        self.core = core
        self.hub = hub
        self.batch_wait = batch_wait
        self.park = park
        self.batch_timer: Timer | None = None
        self.retry_timer: Timer | None = None

    def on_message(self, message: Message) -> None:
        if self.core.add(message, delivery_of(message)):
            self.flush()
        elif self.batch_timer is None and self.hub is not None:
            self.batch_timer = self.hub.call_later(self.batch_wait, self.flush)

    def flush(self) -> None:
        if self.batch_timer is not None:
            self.batch_timer.cancel()
            self.batch_timer = None
        batch = self.core.take()
        if batch:
            self.run_batch(batch)

    def run_batch(self, batch: list[tuple[Message, Delivery]]) -> None:
        self.settle(self.core.handle(batch))

    def retry(self) -> None:
        self.retry_timer = None
        self.settle(self.core.retry_held())

    def settle(self, step: Step[Message]) -> None:
        """Parks first, then requeues, then one ack for the rest; then logs."""
        requeued = [s.decision.action is Action.REQUEUE for s in step.settle]
        for n, s in enumerate(step.settle):
            if s.decision.parked is not None:
                try:
                    self.park(s.delivery.body, self.core.queue, s.decision.parked)
                except Exception as exc:
                    log.error("events: parking a message failed (%r); requeued instead", exc)
                    requeued[n] = True
        for s, requeue in zip(step.settle, requeued, strict=True):
            if requeue:
                s.message.requeue()
        # This queue's channel is its own and batches are settled in the order
        # they came, so the deliveries unacked up to the last one not requeued
        # are exactly these: one "multiple" ack covers them.
        acked = [s for s, requeue in zip(step.settle, requeued, strict=True) if not requeue]
        if acked:
            acked[-1].message.ack(multiple=True)
        for s, requeue in zip(step.settle, requeued, strict=True):
            if not requeue or s.decision.action is Action.REQUEUE:
                self.core.settled(s.delivery, s.decision)
        if step.retry_in is not None and self.hub is not None:
            self.retry_timer = self.hub.call_later(step.retry_in, self.retry)

    def discard(self) -> None:
        """Forget what is pending or held: the channel is closing, and the
        broker delivers them again."""
        for timer in (self.batch_timer, self.retry_timer):
            if timer is not None:
                timer.cancel()
        self.batch_timer = self.retry_timer = None
        self.core.discard()


def declare(channel: Any, topology: Topology, consumer: str) -> str:
    """Declare ``consumer``'s queue with py-amqp's channel; returns its name."""
    spec = topology.queue(consumer)
    declared = topology.declarations(spec)
    for exchange in declared.exchanges:
        channel.exchange_declare(exchange.name, exchange.type, durable=True, auto_delete=False)
    for name, arguments in declared.queues:
        channel.queue_declare(name, durable=True, auto_delete=False, arguments=dict(arguments))
    for queue, exchange_name, routing_key in declared.bindings:
        channel.queue_bind(queue, exchange_name, routing_key)
    return spec.name


class EventConsumers(Generic[H]):
    """What the step needs, in one object a test (or another app) can build.

    Each queue's messages are applied in batches of up to ``batch_size``: a
    batch is handled when it is full or ``batch_wait`` seconds after its first
    message, whichever comes first, and its messages are acked once its
    transaction has committed. ``dependencies_up(consumer)``: see
    events.consuming.EventQueue.
    """

    def __init__(
        self,
        *,
        topology: Topology,
        handlers: Mapping[str, Mapping[str, H]],
        apply_batch: ApplyBatch[H],
        prefetch: int = DEFAULT_PREFETCH,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_wait: float = DEFAULT_BATCH_WAIT,
        dependencies_up: Callable[[str], bool] | None = None,
        outage_retry_waits: tuple[float, float] = OUTAGE_RETRY_WAITS,
        log_each: bool = False,
    ) -> None:
        if prefetch < 1 or batch_size < 1 or batch_wait < 0:
            raise ValueError(
                f"prefetch ({prefetch}) and batch_size ({batch_size}) must be at least 1,"
                f" batch_wait ({batch_wait}) at least 0"
            )
        self.topology = topology
        self.handlers = handlers
        self.apply_batch = apply_batch
        self.prefetch = prefetch
        # A batch larger than the prefetch would never fill: it would always wait.
        self.batch_size = min(batch_size, prefetch)
        self.batch_wait = batch_wait
        self.dependencies_up = dependencies_up
        self.outage_retry_waits = outage_retry_waits
        self.log_each = log_each
        self.queues: list[QueueDriver[H]] = []
        # What runs each queue's batches (the bench's ack-only baseline swaps it).
        self.driver: type[QueueDriver[H]] = QueueDriver

    def queue(self, consumer: str, *, hub: Hub | None, park: Park) -> QueueDriver[H]:
        up = self.dependencies_up
        core: EventQueue[H, Message] = EventQueue(
            consumer=consumer,
            queue=self.topology.queue(consumer).name,
            handlers=self.handlers[consumer],
            apply_batch=self.apply_batch,
            delivery_limit=self.topology.delivery_limit,
            log_each=self.log_each,
            batch_size=self.batch_size if hub is not None else 1,
            # Only with a timer to try again later can a batch be held.
            dependencies_up=partial(up, consumer) if up is not None and hub is not None else None,
            outage_waits=self.outage_retry_waits,
        )
        return self.driver(core, hub=hub, batch_wait=self.batch_wait, park=park)

    def consumers(self, channel: Any, hub: Hub | None, parking: Connection) -> list[Consumer]:
        producer = Producer(parking)

        def park(body: bytes, routing_key: str, parked: Properties) -> None:
            # Confirmed (the connection has confirm_publish); once more after
            # a lost connection: a parked copy twice is better than none.
            producer.publish(
                body,
                exchange=self.topology.dead_letter_exchange,
                routing_key=routing_key,
                mandatory=True,
                retry=True,
                retry_policy={"max_retries": 1},
                **parked,
            )

        consumers = []
        self.queues = []
        for n, consumer in enumerate(self.handlers):
            # A channel per queue: a batch is acked with one "multiple" ack,
            # which on a shared channel would ack other queues' messages too.
            if n:
                channel = channel.connection.channel()
            name = declare(channel, self.topology, consumer)
            driver = self.queue(consumer, hub=hub, park=park)
            self.queues.append(driver)
            consumers.append(
                Consumer(
                    channel,
                    queues=[Queue(name, no_declare=True)],
                    on_message=driver.on_message,
                    prefetch_count=self.prefetch,
                    auto_declare=False,
                )
            )
        return consumers

    def discard_pending(self) -> None:
        for driver in self.queues:
            driver.discard()


class DomainEventConsumerStep(bootsteps.ConsumerStep):
    """Registered on the Celery app. The app's ``events_consumers_factory``
    setting names (dotted path) a function returning the EventConsumers."""

    # After mingle, which reads the worker's connection until it has been
    # quiet for a second: events consumed from it by then would keep it from
    # ever being quiet while they flow, the worker out of its event loop (no
    # ping answered, no task run) and every batch waiting to be full. Without
    # this, Celery's order of the steps changes with the hash seed.
    requires = ("celery.worker.consumer.mingle:Mingle",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        factory = parent.app.conf.get("events_consumers_factory")
        self.event_consumers: EventConsumers[Any] | None = (
            symbol_by_name(factory)() if factory else None
        )
        self.hub: Hub | None = None
        self.parking: Connection | None = None

    def start(self, c: Any) -> None:
        # The worker's event loop (None without one) times each batch's wait.
        self.hub = c.hub
        if self.event_consumers is not None:
            # Connects when it first parks. No heartbeats: nothing would
            # send them on a connection this quiet.
            self.parking = c.connection.clone(heartbeat=0)
        super().start(c)

    def stop(self, c: Any) -> None:
        self._release()
        super().stop(c)

    def shutdown(self, c: Any) -> None:
        self._release()
        super().shutdown(c)

    def _release(self) -> None:
        if self.event_consumers is not None:
            self.event_consumers.discard_pending()
        parking, self.parking = self.parking, None
        if parking is not None:
            parking.release()

    def get_consumers(self, channel: Any) -> list[Consumer]:
        if self.event_consumers is None or self.parking is None:
            return []
        consumers = self.event_consumers.consumers(channel, self.hub, self.parking)
        # Before they consume: the first deliveries may be applied at once.
        log.info("events: consuming %s", ", ".join(q.name for c in consumers for q in c.queues))
        return consumers
