"""Declaring consumer queues from tests, as a consumer would."""

from __future__ import annotations

import asyncio

import aio_pika

from events.amqp import declare_queue
from events.topology import QueueSpec, Topology
from tests.events.broker import AMQP_URL


def declare(topology: Topology, spec: QueueSpec) -> None:
    async def run() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            await declare_queue(await connection.channel(), topology, spec)

    asyncio.run(run())
