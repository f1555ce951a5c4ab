"""Looking into the real RabbitMQ from tests (kombu, synchronous)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, Self, cast

import psutil
from kombu import Connection, Consumer, Queue
from kombu.message import Message

from events.amqp import DEFAULT_AMQP_URL
from events.topology import CONSUMERS, Topology

AMQP_URL = os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL


def connection() -> Connection:
    # Read at each call: the cluster tests point AMQP_URL at their own nodes.
    return Connection(os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL, connect_timeout=5)


class QueueDeclared(Protocol):
    message_count: int


class Delivered(Protocol):
    """A message as basic_get gives it (py-amqp's)."""

    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]


class AmqpChannel(Protocol):
    """What the tests use of a channel kombu opens over py-amqp: kombu's stubs
    name only its abstract channel, py-amqp's miss the context manager and
    queue_declare's result."""

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def basic_get(self, queue: str, no_ack: bool = False) -> Delivered | None: ...
    def queue_declare(self, queue: str, **options: Any) -> QueueDeclared: ...
    def queue_delete(self, queue: str) -> int: ...
    def exchange_delete(self, exchange: str) -> None: ...


def amqp_channel(conn: Connection) -> AmqpChannel:
    return cast(AmqpChannel, conn.channel())


def take(queue: str, *, expected: int, timeout: float = 15) -> list[Delivered]:
    """Consume and ack messages until ``expected`` arrived or ``timeout`` passed."""
    got: list[Delivered] = []
    deadline = time.monotonic() + timeout
    with connection() as conn, amqp_channel(conn) as channel:
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


def read_history(topology: Topology, *, expected: int, timeout: float = 15) -> list[Message]:
    """The history stream's messages from its first, until ``expected`` arrived
    or ``timeout`` passed (a stream is read by a consumer, never by basic_get)."""
    got: list[Message] = []

    def on_message(message: Message) -> None:
        got.append(message)
        message.ack()  # room in the prefetch for the next ones

    history = Queue(
        topology.history.name, no_declare=True, consumer_arguments={"x-stream-offset": "first"}
    )
    deadline = time.monotonic() + timeout
    with connection() as conn, conn.channel() as channel:
        # py-amqp's channel; kombu's stubs name its abstract one, as Consumer takes.
        channel.basic_qos(0, 100, False)  # type: ignore[attr-defined]
        with Consumer(channel, queues=[history], on_message=on_message):
            while len(got) < expected and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=0.1)
                except TimeoutError:
                    continue
    return got


def message_count(queue: str) -> int:
    with connection() as conn, amqp_channel(conn) as channel:
        return channel.queue_declare(queue, passive=True).message_count


def wait_until(
    condition: Callable[[], object], *, timeout: float = 20, what: str = "", interval: float = 0.05
) -> None:
    """Polls ``condition`` every ``interval`` seconds (longer for one that runs a
    command, such as `docker compose exec`) until it is true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


def rabbitmqctl(*args: str) -> list[dict]:
    """The rows of a ``rabbitmqctl list_...`` command on the local broker."""
    if shutil.which("rabbitmqctl") is None:
        raise AssertionError("this test looks into the local broker with rabbitmqctl: install it")
    command = ["rabbitmqctl", "-q", *args, "--formatter", "json"]
    for _ in range(3):
        # It fails now and then on a connection that closes while it is listed.
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            return json.loads(done.stdout)
    raise AssertionError(f"{' '.join(command)}: exit {done.returncode}: {done.stderr}")


def consumer_count(queue: str) -> int:
    # Not list_queues: a quorum queue's consumer count there lags by seconds.
    return sum(row["queue_name"] == queue for row in rabbitmqctl("list_consumers", "queue_name"))


def consumed_by(pid: int) -> set[str]:
    """The queues the process ``pid`` consumes from, as the broker sees it
    (its connections are the ones from the process's own ports)."""
    ports = {
        conn.laddr.port
        for conn in psutil.Process(pid).net_connections("tcp")
        if conn.raddr and conn.status == psutil.CONN_ESTABLISHED
    }
    connections = {
        row["pid"]
        for row in rabbitmqctl("list_connections", "pid", "peer_port")
        if row["peer_port"] in ports
    }
    channels = {
        row["pid"]
        for row in rabbitmqctl("list_channels", "pid", "connection")
        if row["connection"] in connections
    }
    return {
        row["queue_name"]
        for row in rabbitmqctl("list_consumers", "queue_name", "channel_pid")
        if row["channel_pid"] in channels
    }


def bindings() -> dict[str, set[str]]:
    """Each queue's exchanges ("" for the default exchange)."""
    found: dict[str, set[str]] = {}
    for row in rabbitmqctl("list_bindings", "source_name", "destination_name"):
        found.setdefault(row["destination_name"], set()).add(row["source_name"])
    return found


def delete_topology(topology: Topology, instances: Iterable[str] = ()) -> None:
    names = [topology.queue(c) for c in CONSUMERS if c != "recommender"]
    names += [topology.recommender_queue(i) for i in instances]
    with connection() as conn, amqp_channel(conn) as channel:
        for spec in names:
            channel.queue_delete(spec.name)
            channel.queue_delete(spec.dead_letter_queue)
        # The relay's history stream, and the exchanges.
        channel.queue_delete(topology.history.name)
        channel.exchange_delete(topology.exchange)
        channel.exchange_delete(topology.dead_letter_exchange)
        # A Celery worker's own task queue in this namespace, and its exchanges.
        channel.queue_delete(topology.task_queue)
        for exchange in topology.celery_exchanges():
            channel.exchange_delete(exchange)
