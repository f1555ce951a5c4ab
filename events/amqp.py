"""Declaring the topology and connecting with aio-pika (the relay and the recommender)."""

from __future__ import annotations

import os

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from events.topology import DEAD_LETTER_QUEUE_ARGUMENTS, QueueSpec, Topology

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def amqp_url() -> str:
    return os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL


async def declare_exchanges(
    channel: AbstractChannel, topology: Topology
) -> tuple[AbstractExchange, AbstractExchange]:
    """The events exchange and the dead-letter exchange (idempotent)."""
    events = await channel.declare_exchange(
        topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    dead = await channel.declare_exchange(
        topology.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    return events, dead


async def declare_queue(
    channel: AbstractChannel, topology: Topology, spec: QueueSpec
) -> AbstractQueue:
    """A consumer's queue, bound to its event types, and its dead-letter queue."""
    events, dead = await declare_exchanges(channel, topology)
    parked = await channel.declare_queue(
        spec.dead_letter_queue, durable=True, arguments=dict(DEAD_LETTER_QUEUE_ARGUMENTS)
    )
    await parked.bind(dead, routing_key=spec.name)
    queue = await channel.declare_queue(spec.name, durable=True, arguments=dict(spec.arguments))
    for routing_key in spec.routing_keys:
        await queue.bind(events, routing_key=routing_key)
    return queue
