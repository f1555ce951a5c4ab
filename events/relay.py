"""The outbox relay: publishes recorded events to RabbitMQ, losing none.

A round claims a batch of pending rows (locked, so a second relay skips
them), publishes every row at once as a persistent, mandatory message on a
channel with publisher confirms, waits for all the confirms together
(pipelining, not one round trip per row), then marks the confirmed rows sent
and commits. A row is marked sent only after its confirm; a crash before the
commit leaves it pending, so it is published again and consumers drop the
duplicate by event id. A row the broker refuses (unroutable, nacked) gets
its attempt and error recorded and is retried later with backoff.

The database side is a small synchronous interface (OutboxSource) run on one
dedicated thread, so a batch's claim and its marking share one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange
from aio_pika.exceptions import DeliveryError, PublishError

from events.amqp import BrokerNodes, declare_exchanges, declare_history
from events.consuming import Backoff
from events.contracts import CONTENT_TYPE
from events.topology import Topology
from events.tracing import SpanKind, extracted, trace_context, tracer, tracing_disabled

# Closing a connection to a frozen node waits for an answer that never comes.
CLOSE_TIMEOUT = 2.0

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    event_id: str
    event_type: str
    envelope: bytes
    correlation_id: str
    created_at: datetime
    attempts: int = 0
    # Where it was recorded, as W3C headers: it is published in that trace.
    trace_context: Mapping[str, str] = field(default_factory=dict)


class OutboxSource(Protocol):
    """The outbox table, seen by the relay. Every call runs on the same thread."""

    def claim(self, limit: int) -> list[OutboxRow]:
        """Begin a transaction and lock up to ``limit`` due pending rows, oldest first."""

    def finish(self, sent: Sequence[int], failed: dict[int, str]) -> None:
        """Mark ``sent`` rows sent, record ``failed`` rows' errors, and commit."""

    def abandon(self) -> None:
        """Roll the claim back; the rows stay pending."""

    def close(self) -> None:
        """Release the database connection."""


class Relay:
    def __init__(
        self,
        *,
        source_factory: Callable[[], OutboxSource],
        amqp_url: str,
        topology: Topology,
        batch_size: int = 200,
        poll_interval: float = 0.05,
        publish_timeout: float = 10.0,
        max_backoff: float = 10.0,
        on_published: Callable[[Sequence[OutboxRow], float], None] | None = None,
        wakeup: asyncio.Event | None = None,
        traced: bool | None = None,
    ) -> None:
        self._source_factory = source_factory
        self._nodes = BrokerNodes(amqp_url)
        self._topology = topology
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._publish_timeout = publish_timeout
        # Between failed rounds: the first a poll interval, then doubling.
        self._backoff = Backoff(poll_interval, max_backoff)
        self._on_published = on_published
        # Set when a commit added rows (PostgreSQL's NOTIFY): idle, the relay
        # sleeps until then, poll_interval being only a safety net.
        self._wakeup = wakeup
        # False (by default, when OTEL_SDK_DISABLED is true): no publish span.
        self._traced = not tracing_disabled() if traced is None else traced
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-db")
        self._source: OutboxSource | None = None
        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None
        # Rows published and marked sent since start, for the exit log line.
        self.published = 0

    async def _db(self, call: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, call, *args)

    async def _ensure_connected(self) -> AbstractExchange:
        if self._exchange is None:
            # A plain connection: on any failure run() drops it and reconnects
            # with backoff, so no publish is in flight across a reconnect.
            self._connection, node = await self._nodes.connect(
                connect_timeout=10, connection_name="relay"
            )
            # Confirms on, and a returned (unroutable) mandatory message raises.
            channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange, _ = await declare_exchanges(channel, self._topology)
            # Before the first publish: the history holds every event from then on.
            await declare_history(self._connection, self._topology)
            log.info(
                "relay connected to %s; publishing to %s (history kept in %s)",
                node,
                self._topology.exchange,
                self._topology.history.name,
            )
        return self._exchange

    async def _publish(self, exchange: AbstractExchange, row: OutboxRow) -> None:
        if not self._traced:
            # The row's trace goes on as it was stored: nothing read, no span.
            await self._send(exchange, row, row.trace_context)
            return
        # In the trace the row was recorded in; the headers carry it on.
        with tracer.start_as_current_span(
            f"publish {row.event_type}",
            context=extracted(row.trace_context),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "send",
                "messaging.destination.name": self._topology.exchange,
                "messaging.rabbitmq.destination.routing_key": row.event_type,
                "messaging.message.id": row.event_id,
            },
        ):
            await self._send(exchange, row, trace_context())

    async def _send(
        self, exchange: AbstractExchange, row: OutboxRow, headers: Mapping[str, str]
    ) -> None:
        message = aio_pika.Message(
            body=row.envelope,
            headers=dict(headers) or None,
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=row.event_id,
            correlation_id=row.correlation_id or None,
            type=row.event_type,
            timestamp=row.created_at,
        )
        await exchange.publish(
            message, routing_key=row.event_type, mandatory=True, timeout=self._publish_timeout
        )

    async def relay_once(self) -> int:
        """One round; returns how many rows were published and marked sent."""
        if self._source is None:
            self._source = await self._db(self._source_factory)
        source = self._source
        rows = await self._db(source.claim, self._batch_size)
        if not rows:
            await self._db(source.abandon)
            return 0
        try:
            exchange = await self._ensure_connected()
            results = await asyncio.gather(
                *(self._publish(exchange, row) for row in rows), return_exceptions=True
            )
        except BaseException:
            await self._db(source.abandon)
            raise
        # Only the broker's verdict on a row (returned as unroutable, or
        # nacked) is the row's failure; anything else is the connection's,
        # and the whole batch stays pending for the next connection.
        transport_errors = [
            r for r in results if isinstance(r, BaseException) and not isinstance(r, DeliveryError)
        ]
        if transport_errors:
            await self._db(source.abandon)
            raise ConnectionError(f"publishing failed: {transport_errors[0]!r}")
        sent = [row for row, result in zip(rows, results, strict=True) if result is None]
        failed = {
            row.id: f"{type(result).__name__}: {result}"
            for row, result in zip(rows, results, strict=True)
            if isinstance(result, BaseException)
        }
        await self._db(source.finish, [row.id for row in sent], failed)
        self.published += len(sent)
        if sent and self._on_published is not None:
            # Commit-to-confirm time of the batch's oldest row.
            lag = max(0.0, time.time() - sent[0].created_at.timestamp())
            self._on_published(sent, lag)
        if failed:
            log.warning(
                "relay: %d row(s) refused by the broker, retried later: %s",
                len(failed),
                next(iter(failed.values())),
            )
            if any(_nacked(r) for r in results):
                # A channel nacked by a quorum queue whose leader died keeps
                # sending to that node and is nacked until it returns (seen on
                # RabbitMQ 3.10); a new connection finds the new leader at once.
                await self._drop_connection()
        return len(sent)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set, riding out broker and database outages."""
        while not stop.is_set():
            try:
                published = await self.relay_once()
            except Exception as exc:
                wait = self._backoff.next()
                log.warning(
                    "relay round failed (%s: %s); retrying in %.1fs",
                    type(exc).__name__,
                    exc,
                    wait,
                )
                await self._drop_connection()
                await _wait(wait, stop)
                continue
            self._backoff.reset()
            if published < self._batch_size:
                await self._idle(stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        if self._wakeup is None:
            await _wait(self._poll_interval, stop)
            return
        await _wait(self._poll_interval, stop, self._wakeup)
        # Cleared before the next claim: a commit after it wakes the next idle.
        self._wakeup.clear()

    async def _drop_connection(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            try:
                # Bounded: a frozen node never answers the close either.
                await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT)
            except Exception:  # already broken; nothing more to release
                log.debug("closing a broken connection failed", exc_info=True)

    async def close(self) -> None:
        await self._drop_connection()
        if self._source is not None:
            await self._db(self._source.close)
        self._db_thread.shutdown(wait=True)


def _nacked(result: object) -> bool:
    """The broker refused the message (not: returned it as unroutable)."""
    return isinstance(result, DeliveryError) and not isinstance(result, PublishError)


async def _wait(seconds: float, *events: asyncio.Event) -> None:
    """Until one of ``events`` is set, or ``seconds`` have passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
