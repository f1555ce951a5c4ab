"""The bench's own PostgreSQL database and RabbitMQ namespace, made and removed by it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import cast

import amqp
import psycopg
from kombu import Connection

from events.amqp import DEFAULT_AMQP_URL
from events.topology import WORKER_CONSUMERS, Topology

SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
AMQP_URL = os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL


@contextmanager
def database(name: str) -> Iterator[str]:
    """A fresh database ``name`` for the block; its URL. Dropped afterwards."""
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delete_namespace(namespace: str, *, recommenders: Sequence[str] = ()) -> None:
    """Every queue and exchange the bench's processes declared under ``namespace``
    (and the queues of the ``recommenders`` instances)."""
    topology = Topology(namespace=namespace)
    specs = [topology.queue(name) for name in WORKER_CONSUMERS]
    specs += [topology.recommender_queue(instance) for instance in recommenders]
    with Connection(AMQP_URL, connect_timeout=5) as conn:
        # py-amqp's channel (the pyamqp transport); kombu's stubs name its abstract one.
        channel = cast(amqp.Channel, conn.default_channel)
        for spec in specs:
            channel.queue_delete(spec.name)
            channel.queue_delete(spec.dead_letter_queue)
        channel.queue_delete(topology.task_queue)
        channel.queue_delete(topology.history.name)  # the relay declares it
        for exchange in topology.celery_exchanges():
            channel.exchange_delete(exchange)
        channel.exchange_delete(topology.exchange)
        channel.exchange_delete(topology.dead_letter_exchange)
