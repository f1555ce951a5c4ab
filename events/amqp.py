"""The broker: its URLs, connecting with aio-pika, and declaring the topology.

``AMQP_URL`` names one broker or the nodes of a cluster, separated by ``;``
(kombu's failover separator, so Celery and the relay read the same value).
Every client starts with one node and moves to the next when it is lost.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractQueue
from aio_pika.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed
from aiormq.abc import FieldTable
from pydantic import AfterValidator, Field
from yarl import URL

from events.environment import EnvSettings, Flag
from events.log_format import redact_url
from events.topology import (
    DEFAULT_DELIVERY_LIMIT,
    DEFAULT_NAMESPACE,
    QueueSpec,
    Topology,
)

log = logging.getLogger(__name__)

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
URL_SEPARATOR = ";"
# A node that is frozen rather than dead keeps its sockets open: heartbeats
# are what notice it. RabbitMQ's default (60 s) would stall a client that long.
HEARTBEAT_SECONDS = 10


class _ReportedByCaller(logging.Filter):
    """aiormq logs every failed connect at ERROR, with no word of what follows.
    BrokerNodes' callers report the same failure once, as a WARNING saying
    what they do next (the next node, the wait), so a broker that is down for
    a while is one line per try, not two, and not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == _TRANSPORT_ERROR and record.levelno == logging.ERROR)


_TRANSPORT_ERROR = "error when creating transport: %r"
logging.getLogger("aiormq.connection").addFilter(_ReportedByCaller())


def broker_urls(value: str, *, variable: str = "AMQP_URL") -> tuple[str, ...]:
    """The node URLs in ``value``; a malformed entry is refused by name."""
    urls = tuple(entry.strip() for entry in value.split(URL_SEPARATOR))
    for url in urls:
        problem = _url_problem(url)
        if problem:
            raise ValueError(
                f"{variable} entry {redact_url(url)!r} is not a broker URL ({problem}); "
                f"expected amqp[s]://user:password@host:port/vhost, "
                f"several separated by {URL_SEPARATOR!r}"
            )
    return urls


def _broker_url(value: str) -> str:
    broker_urls(value)
    return value


BrokerUrl = Annotated[str, AfterValidator(_broker_url)]


class BrokerEnv(EnvSettings):
    """Every process's broker settings: where it is, and the topology's names."""

    # Out of repr: the URL may carry a password.
    amqp_url: BrokerUrl = Field(DEFAULT_AMQP_URL, validation_alias="AMQP_URL", repr=False)
    events_namespace: str = Field(DEFAULT_NAMESPACE, validation_alias="EVENTS_NAMESPACE")
    events_delivery_limit: int = Field(
        DEFAULT_DELIVERY_LIMIT, ge=1, validation_alias="EVENTS_DELIVERY_LIMIT"
    )
    # A log line per event consumed (false: one per batch applied, and one per
    # event that failed or was parked).
    events_log_each: Flag = Field(False, validation_alias="EVENTS_LOG_EACH")

    @property
    def topology(self) -> Topology:
        return Topology(namespace=self.events_namespace, delivery_limit=self.events_delivery_limit)


def _url_problem(url: str) -> str | None:
    if not url:
        return "empty"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a port that is not a number)
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("amqp", "amqps"):
        return f"scheme {parts.scheme or 'missing'!r}"
    if not parts.hostname:
        return "no host"
    return None


class BrokerNodes:
    """Connects to the nodes of ``AMQP_URL`` in turn, from the one after the last lost."""

    def __init__(self, value: str, *, variable: str = "AMQP_URL") -> None:
        self.urls = broker_urls(value, variable=variable)
        self._next = 0

    def __repr__(self) -> str:  # passwords stay out of any log
        return f"BrokerNodes({', '.join(redact_url(url) for url in self.urls)})"

    async def connect(
        self, *, connect_timeout: float, connection_name: str = ""
    ) -> tuple[AbstractConnection, str]:
        """A plain connection to the first node that answers, and its (redacted) URL.

        Raises the last node's error when none answers. The caller reconnects
        through here after a loss, so the lost node is tried last next time.
        """
        error: Exception | None = None
        for _ in self.urls:
            url = self.urls[self._next]
            self._next = (self._next + 1) % len(self.urls)
            # A heartbeat the URL names wins (aio-pika reads it from the query).
            target = URL(url)
            if "heartbeat" not in target.query:
                target = target.update_query(heartbeat=HEARTBEAT_SECONDS)
            properties: FieldTable = {"connection_name": connection_name}
            try:
                connection = await aio_pika.connect(
                    target, timeout=connect_timeout, client_properties=properties
                )
            except Exception as exc:  # this node is down or refuses us: the next one
                log.debug("broker node %s did not answer: %r", redact_url(url), exc)
                error = exc
                continue
            # The next reconnect starts with the node after this one.
            return connection, redact_url(url)
        assert error is not None
        raise error


async def declare_exchanges(
    channel: AbstractChannel, topology: Topology
) -> tuple[AbstractExchange, AbstractExchange]:
    """The events exchange and the dead-letter exchange (idempotent)."""
    events, dead = [
        await channel.declare_exchange(spec.name, spec.type, durable=True)
        for spec in topology.exchanges()
    ]
    return events, dead


async def queue_exists(connection: AbstractConnection, name: str) -> bool:
    """Whether the queue is there (asked on a channel of its own: the broker
    closes the channel of a passive declaration that finds none)."""
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, passive=True)
    except ChannelNotFoundEntity:
        return False
    await channel.close()
    return True


async def declare_queue(
    channel: AbstractChannel, topology: Topology, spec: QueueSpec, *, exists: bool = False
) -> AbstractQueue:
    """A consumer's queue, bound to its event types, and its dead-letter queue.

    ``exists``: the queue is there already, and is taken with the arguments
    it was declared with (passively), which may be an earlier version's."""
    declared = topology.declarations(spec)
    exchanges = {
        exchange.name: await channel.declare_exchange(exchange.name, exchange.type, durable=True)
        for exchange in declared.exchanges
    }
    queues = {
        name: await channel.declare_queue(
            name, durable=True, arguments=dict(arguments), passive=exists and name == spec.name
        )
        for name, arguments in declared.queues
    }
    for queue, exchange, routing_key in declared.bindings:
        await queues[queue].bind(exchanges[exchange], routing_key=routing_key)
    return queues[spec.name]


async def declare_history(connection: AbstractConnection, topology: Topology) -> None:
    """The history stream, bound to the events the recommender learns (idempotent).

    On a channel of its own: a stream declared with another retention
    (EVENTS_HISTORY_MAX_BYTES changed since) refuses the declaration and
    closes the channel. Failing there would stop every publish; the stream
    keeps its retention instead, with a warning.
    """
    spec = topology.history
    channel = await connection.channel()
    try:
        events, _ = await declare_exchanges(channel, topology)
        try:
            stream = await channel.declare_queue(
                spec.name, durable=True, arguments=dict(spec.arguments)
            )
        except ChannelPreconditionFailed as exc:
            log.warning(
                "the history stream %s keeps the retention it was declared with (%s):"
                " a stream's arguments never change; a policy's max-length-bytes can lower it",
                spec.name,
                exc,
            )
            channel = await connection.channel()
            stream = await channel.declare_queue(spec.name, passive=True)
        for routing_key in spec.routing_keys:
            await stream.bind(events, routing_key=routing_key)
    finally:
        await channel.close()
