"""The recommender learns books and purchases from domain events.

Three layers, the first two testable without a broker:

- ``changes_of``: what an event means for the recommender (books, purchases).
- ``apply_deliveries``: delivered messages into the store, idempotently,
  a batch of one event type per transaction. events.dispatch decides ack,
  requeue or park, exactly as for the Celery consumers. Synchronous; the
  consumer runs it on a worker thread.
- ``EventsConsumer``: aio-pika, on the server's event loop beside gRPC.

A message is acked only after its effects and its inbox row commit in one
SQLite transaction; the in-memory index learns only what was new, so a
redelivery changes nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
)
from aio_pika.exceptions import ChannelInvalidStateError

from bookstore.events.v1 import events_pb2
from events.amqp import BrokerNodes, declare_exchanges, declare_queue
from events.contracts import BOOK_UPSERTED, PURCHASE_COMPLETED, Event
from events.dead_letters import is_last_delivery, parked_headers
from events.dispatch import Action, Delivery, Outcome, dispatch_batch, failure_reason
from events.topology import Topology
from recommender.engine import Book, Category, Purchase, RecommendationIndex
from recommender.store import EventChange, Store

log = logging.getLogger("recommender.events")

CONSUMER = "recommender"
DEFAULT_PREFETCH = 32
CONTENT_TYPE = "application/x-protobuf"


class UnsupportedEvent(ValueError):
    """A well-formed event this build cannot apply; the message says why."""


@dataclass(frozen=True, slots=True)
class Changes:
    books: tuple[Book, ...] = ()
    purchases: tuple[Purchase, ...] = ()


# What makes an event valid (ids, categories, quantities, one line per book)
# is checked by events.contracts.unwrap() before any of these is called.


def book_changes(event: Event) -> Changes:
    book: events_pb2.BookUpserted = event.payload
    category = Category(book.category)
    return Changes(books=(Book(book.book_id, book.title, book.author, category, book.active),))


def purchase_changes(event: Event) -> Changes:
    order: events_pb2.PurchaseCompleted = event.payload
    return Changes(
        purchases=tuple(
            Purchase(order.order_id, order.user_id, line.book_id, line.quantity)
            for line in order.lines
        )
    )


Translator = Callable[[Event], Changes]
TRANSLATORS: Mapping[str, Translator] = {
    BOOK_UPSERTED: book_changes,
    PURCHASE_COMPLETED: purchase_changes,
}


def changes_of(event: Event) -> Changes:
    translate = TRANSLATORS.get(event.event_type)
    if translate is None:
        raise UnsupportedEvent(f"the recommender does not apply {event.event_type} events")
    return translate(event)


def learn(index: RecommendationIndex, changes: Changes) -> None:
    """Teach the in-memory index what the store has just committed."""
    for book in changes.books:
        index.upsert_book(book)
    for purchase in changes.purchases:
        index.add_purchase(purchase)


@dataclass(frozen=True, slots=True)
class Handled:
    outcome: Outcome
    # What the index must learn; None unless the event was new to the store.
    learned: Changes | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    # One per delivery, in their order.
    outcomes: list[Outcome]
    # What the index must learn, in the order the store committed it.
    learned: list[Changes]


def apply_delivery(
    store: Store, *, body: bytes, headers: Mapping[str, Any] | None, delivery_limit: int
) -> Handled:
    """Decode, apply to the store once (inbox), and say what to do with the message."""
    applied = apply_deliveries(store, [Delivery(body, headers)], delivery_limit=delivery_limit)
    return Handled(applied.outcomes[0], applied.learned[0] if applied.learned else None)


def apply_deliveries(
    store: Store, deliveries: Sequence[Delivery], *, delivery_limit: int
) -> Applied:
    """apply_delivery() for each, the events of one type in one transaction
    (one commit, one fsync); a transaction that fails is tried again one
    event at a time, so only the culprit is retried or parked."""
    learned: list[Changes] = []

    def apply_batch(consumer: str, events: Sequence[Event], translate: Translator) -> set[str]:
        changes = [
            EventChange(event.event_id, event.event_type, c.books, c.purchases, event.occurred_at)
            for event, c in ((event, translate(event)) for event in events)
        ]
        new: set[str] = set()
        for event, result in zip(events, store.apply_events(changes), strict=True):
            if result.new:
                new.add(event.event_id)
                # Only what the store took: not a book change older than its own.
                learned.append(Changes(result.books, result.purchases))
        return new

    try:
        outcomes = dispatch_batch(
            consumer=CONSUMER,
            deliveries=deliveries,
            # dispatch only hands the translator back to ``apply_batch``.
            handlers=TRANSLATORS,
            apply_batch=apply_batch,
            delivery_limit=delivery_limit,
        )
    except Exception as exc:  # the decoder failing in a way unwrap() does not name
        # Decoding comes before any transaction: nothing was applied.
        if len(deliveries) > 1:
            alone = [
                apply_deliveries(store, [d], delivery_limit=delivery_limit) for d in deliveries
            ]
            return Applied([a.outcomes[0] for a in alone], [c for a in alone for c in a.learned])
        reason = failure_reason(exc)
        if is_last_delivery(deliveries[0].headers, delivery_limit):
            return Applied([Outcome(Action.PARK, reason=f"failed: {reason}", result="failed")], [])
        return Applied([Outcome(Action.REQUEUE, reason=reason, result="retry")], [])
    return Applied(outcomes, learned)


class EventsConsumer:
    """Consumes this replica's queue into ``store`` and ``index``, beside the gRPC server.

    ``start()`` returns at once: connecting (with backoff while the broker is
    unreachable) happens in the background, so a dead broker never keeps
    the server from serving. After a connection loss it reconnects, to the
    next node of the cluster first, and resumes consuming.

    Messages are handled in batches of what has arrived (up to the
    prefetch), each event type's in one transaction; the index learns the
    changes in the order the store committed them.
    """

    def __init__(
        self,
        *,
        store: Store,
        index: RecommendationIndex,
        amqp_url: str,
        topology: Topology,
        instance: str,
        prefetch: int = DEFAULT_PREFETCH,
        connect_timeout: float = 10.0,
        max_backoff: float = 30.0,
        publish_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.index = index
        self.topology = topology
        self.spec = topology.recommender_queue(instance)
        self._nodes = BrokerNodes(amqp_url)
        self._instance = instance
        self._prefetch = prefetch
        self._connect_timeout = connect_timeout
        self._max_backoff = max_backoff
        self._publish_timeout = publish_timeout
        self._stop_timeout = stop_timeout
        self._connection: AbstractConnection | None = None
        self._dead_letters: AbstractExchange | None = None
        self._deliveries: asyncio.Queue[AbstractIncomingMessage | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._subscribed = False
        self._busy = False
        self._stopping = False
        # Messages handled, by dispatch result ("applied", "duplicate", "malformed", ...).
        self.results: Counter[str] = Counter()

    @property
    def consuming(self) -> bool:
        """Connected, with the queue declared and bound (now publishing reaches it)."""
        connection = self._connection
        return (
            self._subscribed
            and connection is not None
            and not connection.is_closed
            and connection.connected.is_set()
        )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"consume {self.spec.name}")

    async def stop(self) -> None:
        """Finish the message in hand (so it is acked), then disconnect.

        Messages prefetched but not started go back to the queue when the
        connection closes; the next start (or another replica) gets them.
        """
        self._stopping = True
        self._deliveries.put_nowait(None)
        task, self._task = self._task, None
        if task is not None:
            if not self._busy:
                task.cancel()
            done, _ = await asyncio.wait({task}, timeout=self._stop_timeout)
            if not done:
                log.warning(
                    "events: a message took over %.0fs to apply; abandoned", self._stop_timeout
                )
                task.cancel()
                await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                log.error("events: the consumer had failed", exc_info=task.exception())
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await asyncio.wait_for(connection.close(), self._stop_timeout)
            except Exception as exc:  # a dead broker; the socket goes with the process
                log.debug("events: closing the connection failed: %r", exc)
        log.info("events: stopped consuming %s", self.spec.name)

    async def _run(self) -> None:
        link = asyncio.create_task(self._stay_connected(), name=f"connect {self.spec.name}")
        try:
            await self._consume()
        finally:
            link.cancel()
            await asyncio.wait({link})

    async def _consume(self) -> None:
        while not self._stopping:
            message = await self._deliveries.get()
            if message is None:
                break
            # What has arrived meanwhile goes with it: one transaction, one fsync.
            batch = [message]
            while len(batch) < self._prefetch and not self._deliveries.empty():
                more = self._deliveries.get_nowait()
                if more is None:  # stop() was called: this batch is the last
                    break
                batch.append(more)
            self._busy = True
            try:
                await self._handle(batch)
            except Exception:  # a bug here must not end consumption for good
                log.exception("events: handling messages failed; they will be redelivered")
            finally:
                self._busy = False

    async def _stay_connected(self) -> None:
        """Connects to a node of the cluster, and to the next one whenever it is lost."""
        backoff = min(0.5, self._max_backoff)
        while not self._stopping:
            try:
                # Held by self at once, so stop() closes it whatever happens next.
                self._connection, node = await self._open()
                lost = _closed(self._connection)
                # The broker may close the channel alone (a publish to an
                # exchange deleted meanwhile): that ends consuming just the same.
                _closed(await self._subscribe(self._connection), lost)
            except Exception as exc:
                log.warning(
                    "events: cannot consume %s from %r (%s: %s); retrying in %.1fs",
                    self.spec.name,
                    self._nodes,
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                connection, self._connection = self._connection, None
                if connection is not None:
                    await _close_quietly(connection)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            self._subscribed = True
            backoff = min(0.5, self._max_backoff)
            log.info(
                "events: consuming %s from %s (prefetch %d)", self.spec.name, node, self._prefetch
            )
            reason = await lost
            self._subscribed = False
            if not self._stopping:
                # Unacked deliveries of the lost channel go back to the queue
                # by themselves; _handle skips the copies in hand.
                log.warning("events: lost %s (%r); connecting to the next node", node, reason)
                connection, self._connection = self._connection, None
                if connection is not None:
                    await _close_quietly(connection)

    async def _open(self) -> tuple[AbstractConnection, str]:
        attempt = asyncio.ensure_future(
            self._nodes.connect(
                connect_timeout=self._connect_timeout,
                connection_name=f"recommender {self._instance}",
            )
        )
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            # Stopped mid-connect: a connection made after all must not live on.
            attempt.add_done_callback(_close_if_connected)
            raise

    async def _subscribe(self, connection: AbstractConnection) -> AbstractChannel:
        # on_return_raises: a parked message the broker cannot route is an error.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=self._prefetch)
        queue = await declare_queue(channel, self.topology, self.spec)
        _, self._dead_letters = await declare_exchanges(channel, self.topology)
        await queue.consume(self._on_message)
        return channel

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._deliveries.put_nowait(message)

    async def _handle(self, messages: list[AbstractIncomingMessage]) -> None:
        live = []
        for message in messages:
            try:
                message.channel  # noqa: B018  (raises for a closed channel)
            except ChannelInvalidStateError:
                # Delivered before a reconnect: the broker has requeued it already.
                continue
            live.append(message)
        if not live:
            return
        applied = await asyncio.to_thread(
            apply_deliveries,
            self.store,
            [Delivery(message.body, message.headers) for message in live],
            delivery_limit=self.topology.delivery_limit,
        )
        for changes in applied.learned:
            learn(self.index, changes)
        for message, outcome in zip(live, applied.outcomes, strict=True):
            event = outcome.event
            log.info(
                "event consumer=%s type=%s id=%s correlation_id=%s result=%s%s",
                CONSUMER,
                event.event_type if event else message.type or "?",
                event.event_id if event else message.message_id or "?",
                event.correlation_id if event else message.correlation_id or "-",
                outcome.result,
                f" reason={outcome.reason!r}" if outcome.reason else "",
            )
            try:
                await self._settle(message, outcome)
            except Exception as exc:
                # Unacked, it comes back (on this channel's end at the latest);
                # the inbox makes that a no-op.
                log.warning("events: could not settle a message (%r); it will be redelivered", exc)
                continue
            self.results[outcome.result] += 1

    async def _settle(self, message: AbstractIncomingMessage, outcome: Outcome) -> None:
        if outcome.action is Action.PARK:
            try:
                await self._park(message, outcome.reason)
            except Exception as exc:
                log.error("events: parking a message failed (%r); requeued instead", exc)
                await message.nack(requeue=True)
                raise
            await message.ack()
        elif outcome.action is Action.REQUEUE:
            await message.nack(requeue=True)
        else:
            await message.ack()

    async def _park(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Republish to the dead-letter queue with the reason; returns once confirmed."""
        if self._dead_letters is None:
            raise RuntimeError("not connected")
        parked = aio_pika.Message(
            body=message.body,
            headers=parked_headers(
                message.headers, reason=reason, consumer=CONSUMER, queue=self.spec.name
            ),
            content_type=message.content_type or CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            # A returned message is matched to its publish by id.
            message_id=message.message_id or str(uuid.uuid4()),
            correlation_id=message.correlation_id,
            type=message.type,
            timestamp=message.timestamp,
        )
        await self._dead_letters.publish(
            parked, routing_key=self.spec.name, mandatory=True, timeout=self._publish_timeout
        )


def _closed(
    closable: AbstractConnection | AbstractChannel,
    closed: asyncio.Future[BaseException | None] | None = None,
) -> asyncio.Future[BaseException | None]:
    """``closed`` (a new future if None), resolved with the reason when ``closable`` closes."""
    if closed is None:
        closed = asyncio.get_running_loop().create_future()

    def on_close(_closable: object, exc: BaseException | None = None) -> None:
        if not closed.done():
            closed.set_result(exc)

    closable.close_callbacks.add(on_close)
    return closed


def _close_if_connected(attempt: asyncio.Future[tuple[AbstractConnection, str]]) -> None:
    if not attempt.cancelled() and attempt.exception() is None:
        closing = asyncio.ensure_future(_close_quietly(attempt.result()[0]))
        _background.add(closing)
        closing.add_done_callback(_background.discard)


# Strong references to fire-and-forget tasks, which the loop holds only weakly.
_background: set[asyncio.Future[None]] = set()


async def _close_quietly(connection: AbstractConnection) -> None:
    try:
        await asyncio.wait_for(connection.close(), 5)
    except Exception as exc:  # never opened, or already gone
        log.debug("events: closing a failed connection: %r", exc)
