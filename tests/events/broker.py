"""Looking into the real RabbitMQ from tests (kombu, synchronous)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from kombu import Connection
from kombu.message import Message

from events.amqp import DEFAULT_AMQP_URL
from events.topology import CONSUMERS, Topology

AMQP_URL = os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL


def connection() -> Connection:
    # Read at each call: the cluster tests point AMQP_URL at their own nodes.
    return Connection(os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL, connect_timeout=5)


def take(queue: str, *, expected: int, timeout: float = 15) -> list[Message]:
    """Consume and ack messages until ``expected`` arrived or ``timeout`` passed."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    with connection() as conn, conn.channel() as channel:
        while len(got) < expected and time.monotonic() < deadline:
            message = channel.basic_get(queue, no_ack=True)
            if message is None:
                time.sleep(0.02)
                continue
            got.append(message)
        # Anything beyond ``expected`` shows up too, after a short grace.
        grace = time.monotonic() + 0.3
        while time.monotonic() < grace:
            message = channel.basic_get(queue, no_ack=True)
            if message is not None:
                got.append(message)
    return got


def message_count(queue: str) -> int:
    with connection() as conn, conn.channel() as channel:
        return channel.queue_declare(queue, passive=True).message_count


def wait_until(condition: Callable[[], object], *, timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


def delete_topology(topology: Topology, instances: Iterable[str] = ()) -> None:
    names = [topology.queue(c) for c in CONSUMERS if c != "recommender"]
    names += [topology.recommender_queue(i) for i in instances]
    with connection() as conn, conn.channel() as channel:
        for spec in names:
            channel.queue_delete(spec.name)
            channel.queue_delete(spec.dead_letter_queue)
        channel.exchange_delete(topology.exchange)
        channel.exchange_delete(topology.dead_letter_exchange)
        # A Celery worker's own task queue (CELERY_TASK_DEFAULT_QUEUE) in this
        # namespace, and the exchange of the same name it is bound to.
        channel.queue_delete(f"{topology.namespace}.tasks")
        channel.exchange_delete(f"{topology.namespace}.tasks")
