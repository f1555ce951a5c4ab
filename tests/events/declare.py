"""Declaring consumer queues from tests, as a consumer would, and the
history stream, as the relay does."""

from __future__ import annotations

import asyncio

import aio_pika

from events.amqp import declare_history, declare_queue
from events.topology import QueueSpec, Topology
from tests.events.broker import AMQP_URL


def declare(topology: Topology, spec: QueueSpec) -> None:
    async def run() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            await declare_queue(await connection.channel(), topology, spec)

    asyncio.run(run())


def declare_history_stream(topology: Topology) -> None:
    async def run() -> None:
        async with await aio_pika.connect(AMQP_URL, timeout=5) as connection:
            await declare_history(connection, topology)

    asyncio.run(run())
