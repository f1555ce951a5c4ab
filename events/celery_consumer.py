"""The Celery side: a ConsumerStep that consumes the domain-event queues.

Domain events have their own queues (events.topology), never Celery's task
queue: a task consumer would reject them as unknown messages. This step adds
a kombu consumer per worker queue to the worker's connection, with a bounded
prefetch, and turns each dispatch Outcome into an ack, a requeue, or a park
(republish to the dead-letter exchange, confirmed, then ack).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from celery import bootsteps
from kombu import Consumer, Exchange, Message, Producer, Queue, binding
from kombu.utils.imports import symbol_by_name

from events.correlation import correlation
from events.dead_letters import parked_headers
from events.dispatch import Action, Apply, Handler, Outcome, dispatch
from events.topology import DEAD_LETTER_QUEUE_ARGUMENTS, QueueSpec, Topology

log = logging.getLogger(__name__)

DEFAULT_PREFETCH = 16


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


class EventConsumers:
    """What the step needs, in one object a test (or another app) can build."""

    def __init__(
        self,
        *,
        topology: Topology,
        routes: Mapping[str, Mapping[str, Handler]],
        apply: Apply,
        prefetch: int = DEFAULT_PREFETCH,
        on_outcome: Callable[[str, Outcome], None] | None = None,
    ) -> None:
        self.topology = topology
        self.routes = routes
        self.apply = apply
        self.prefetch = prefetch
        self.on_outcome = on_outcome

    def consumers(self, channel: Any) -> list[Consumer]:
        consumers = []
        for consumer_name, handlers in self.routes.items():
            spec = self.topology.queue(consumer_name)
            queue, parked = kombu_queues(self.topology, spec)
            parked(channel).declare()
            consumers.append(
                Consumer(
                    channel,
                    queues=[queue],
                    on_message=partial(self.on_message, consumer_name, spec, handlers),
                    prefetch_count=self.prefetch,
                )
            )
        return consumers

    def on_message(
        self,
        consumer_name: str,
        spec: QueueSpec,
        handlers: Mapping[str, Handler],
        message: Message,
    ) -> None:
        with correlation(message.properties.get("correlation_id") or "-"):
            outcome = dispatch(
                consumer=consumer_name,
                body=message.body,
                headers=message.headers,
                handlers=handlers,
                apply=self.apply,
                delivery_limit=self.topology.delivery_limit,
            )
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
            message.ack()
        elif outcome.action is Action.REQUEUE:
            message.requeue()
        else:
            message.ack()
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


class DomainEventConsumerStep(bootsteps.ConsumerStep):
    """Registered on the Celery app. The app's ``events_consumers_factory``
    setting names (dotted path) a function returning the EventConsumers."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        factory = parent.app.conf.get("events_consumers_factory")
        self.event_consumers: EventConsumers | None = symbol_by_name(factory)() if factory else None

    def get_consumers(self, channel: Any) -> list[Consumer]:
        if self.event_consumers is None:
            return []
        return self.event_consumers.consumers(channel)
