"""The RabbitMQ topology, declared in one place; everything else uses its names.

One durable topic exchange carries every domain event, routed by event type.
Each consumer has its own durable quorum queue bound to the event types it
handles, so one event reaches every interested consumer. A message that keeps
failing is dead-lettered (after ``delivery_limit`` deliveries, counted by the
broker) to that queue's own dead-letter queue, where an operator can inspect
and replay it.

Names are prefixed by a namespace (``EVENTS_NAMESPACE``, default
"bookstore"), so tests and parallel environments never share queues. Celery's
own names (its task queue, remote control, worker events) follow it too: two
shops on one broker never take each other's.

Beside the queues, a stream keeps the history of what the recommender
learns from (``Topology.history``): a replica added later reads it from its
start to learn what happened before its queue existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from events.routes import ROUTES

DEFAULT_NAMESPACE = "bookstore"
DEFAULT_DELIVERY_LIMIT = 5
# Bytes of events the history stream keeps before dropping its oldest
# segments (500 MB each, the broker's default): about 8 million events at
# the 600 bytes a purchase takes there (its properties included).
DEFAULT_HISTORY_MAX_BYTES = 5_000_000_000
# The AMQP type of a message a reader of the history stream publishes into it
# to know where its reading ends (recommender.events_consumer): not an event,
# skipped by every other reader.
HISTORY_MARKER = "history.marker"

# Every queue that holds work is a quorum queue, on 3 nodes: the broker's
# default group size (quorum_cluster_size), all it has on a smaller cluster.
# Not set per queue: a queue an earlier version declared without it would
# refuse the redeclaration (PRECONDITION_FAILED), stopping every consumer.
QUORUM_QUEUE_ARGUMENTS: Mapping[str, Any] = {"x-queue-type": "quorum"}
DEAD_LETTER_QUEUE_ARGUMENTS: Mapping[str, Any] = QUORUM_QUEUE_ARGUMENTS

# A recommender replica's queue goes after a day with no consumer: one of a
# replica scaled away for good would otherwise collect every event for ever.
# A replica that comes back after its queue went reads the history stream
# again (recommender.events_consumer), so nothing is lost. Set only on
# queues made from now on: a queue an earlier version declared without it
# is kept as it is (the recommender declares an existing queue passively).
RECOMMENDER_QUEUE_EXPIRES_MS = 24 * 60 * 60 * 1000

# Consumer name -> the event types it is bound to: those it has handlers for.
CONSUMERS: dict[str, tuple[str, ...]] = {name: tuple(types) for name, types in ROUTES.items()}
WORKER_CONSUMERS = tuple(name for name in CONSUMERS if name.startswith("worker."))


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    routing_keys: tuple[str, ...]
    dead_letter_queue: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    name: str
    type: str  # "topic" or "direct"


@dataclass(frozen=True, slots=True)
class Declarations:
    """What a consumer declares before consuming, for any client to apply in
    this order: exchanges, then queues (name, arguments), then bindings
    (queue, exchange, routing key). Everything durable, nothing auto-deleted."""

    exchanges: tuple[ExchangeSpec, ...]
    queues: tuple[tuple[str, Mapping[str, Any]], ...]
    bindings: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    routing_keys: tuple[str, ...]
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Topology:
    namespace: str = DEFAULT_NAMESPACE
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT
    # Read by the side that declares the history stream (the relay).
    history_max_bytes: int = DEFAULT_HISTORY_MAX_BYTES

    @property
    def exchange(self) -> str:
        return f"{self.namespace}.events"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.namespace}.events.dead"

    @property
    def task_queue(self) -> str:
        """Celery's task queue (a quorum queue), and its exchange of the same name.

        Not "<namespace>.tasks": earlier versions made that a classic queue,
        which cannot become a quorum queue; drain it, then delete it.
        """
        return f"{self.namespace}.celery.tasks"

    @property
    def control_name(self) -> str:
        """What Celery's remote control names its exchanges and each node's
        queue after ("<it>.pidbox", "reply.<it>.pidbox", "<node>.<it>.pidbox")."""
        return self.namespace

    @property
    def worker_events_exchange(self) -> str:
        """Celery's worker events (heartbeats, gossip), and its queues' prefix."""
        return f"{self.namespace}.celeryev"

    def celery_exchanges(self) -> tuple[str, ...]:
        """Every exchange Celery's processes declare. Of their queues, only
        the task queue outlives them: the others are each process's own."""
        # Here, not at the top: the recommender reads the topology and has no
        # use for kombu (a few MB it need not load).
        from kombu.pidbox import Mailbox

        return (
            self.task_queue,
            Mailbox.exchange_fmt % self.control_name,
            Mailbox.reply_exchange_fmt % self.control_name,
            self.worker_events_exchange,
        )

    def queue(self, consumer: str, *, instance: str = "") -> QueueSpec:
        """The queue of ``consumer`` (for the recommender, of one ``instance``)."""
        if consumer not in CONSUMERS:
            raise KeyError(f"unknown consumer {consumer!r}; known: {', '.join(CONSUMERS)}")
        name = f"{self.namespace}.{consumer}" + (f".{instance}" if instance else "")
        return QueueSpec(
            name=name,
            routing_keys=CONSUMERS[consumer],
            dead_letter_queue=f"{name}.dead",
            arguments={
                **QUORUM_QUEUE_ARGUMENTS,
                # After this many deliveries the broker parks the message.
                "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": self.dead_letter_exchange,
                "x-dead-letter-routing-key": name,
                # Dead-lettering confirmed by the dead-letter queue: a parked
                # message cannot be lost on the way (needs reject-publish).
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
                **(
                    {"x-expires": RECOMMENDER_QUEUE_EXPIRES_MS} if consumer == "recommender" else {}
                ),
            },
        )

    def exchanges(self) -> tuple[ExchangeSpec, ExchangeSpec]:
        """The events exchange and the dead-letter exchange."""
        return ExchangeSpec(self.exchange, "topic"), ExchangeSpec(
            self.dead_letter_exchange, "direct"
        )

    def declarations(self, spec: QueueSpec) -> Declarations:
        """A consumer's queue, bound to its event types, and its dead-letter queue."""
        return Declarations(
            exchanges=self.exchanges(),
            queues=(
                (spec.dead_letter_queue, DEAD_LETTER_QUEUE_ARGUMENTS),
                (spec.name, spec.arguments),
            ),
            bindings=(
                (spec.dead_letter_queue, self.dead_letter_exchange, spec.name),
                *((spec.name, self.exchange, key) for key in spec.routing_keys),
            ),
        )

    def worker_queues(self) -> list[QueueSpec]:
        return [self.queue(name) for name in WORKER_CONSUMERS]

    def recommender_queue(self, instance: str) -> QueueSpec:
        return self.queue("recommender", instance=instance)

    @property
    def history(self) -> StreamSpec:
        """The stream of every event a recommender replica learns from.

        Bound like a replica's queue and declared by the relay before it
        publishes anything, so it holds the shop's history (up to
        ``history_max_bytes``) whenever a replica is added. A stream is not
        consumed away: each reader reads it from where it chooses.
        """
        return StreamSpec(
            name=f"{self.namespace}.history",
            routing_keys=CONSUMERS["recommender"],
            arguments={"x-queue-type": "stream", "x-max-length-bytes": self.history_max_bytes},
        )
