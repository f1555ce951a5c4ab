"""The recommender learns books and purchases from domain events.

Three layers, the first two testable without a broker:

- ``TRANSLATORS``: what an event means for the recommender (books, purchases).
- ``StoreApplier``: events into the store, idempotently, a batch of one
  event type per transaction, run by an events.consuming.EventQueue, which
  decides ack, requeue or park exactly as for the Celery consumers.
  Synchronous; the consumer runs it on a worker thread.
- ``EventsConsumer``: aio-pika, on the server's event loop beside gRPC.

A message is acked only after its effects and its inbox row commit in one
SQLite transaction; the in-memory index learns only what was new, so a
redelivery changes nothing twice.

A replica whose store has never caught up first reads the history stream
(events.topology) from its start, through the same code and the same inbox,
so one added to a running shop learns everything published before its queue
existed (see ``EventsConsumer``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar, cast

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
)
from aio_pika.exceptions import ChannelInvalidStateError, ChannelNotFoundEntity

from bookstore.events.v1 import events_pb2
from events.amqp import BrokerNodes, declare_exchanges, declare_queue, queue_exists
from events.consuming import (
    STREAM_OFFSET_HEADER,
    Action,
    Backoff,
    Decision,
    Delivery,
    EventQueue,
    Step,
    delivery,
)
from events.contracts import Event, payload_as
from events.routes import handlers
from events.topology import HISTORY_MARKER, Topology
from recommender.engine import Book, Category, Purchase, RecommendationIndex
from recommender.store import EventChange, Store

log = logging.getLogger("recommender.events")

CONSUMER = "recommender"
DEFAULT_PREFETCH = 32
# Events of the history read at once, and applied in one transaction: a new
# replica catches up at 2-4k events/s here with these, 850/s in batches of 32.
HISTORY_PREFETCH = 512


@dataclass(frozen=True, slots=True)
class Changes:
    books: tuple[Book, ...] = ()
    purchases: tuple[Purchase, ...] = ()


# What makes an event valid (ids, categories, quantities, one line per book)
# is checked by events.contracts.unwrap() before any of these is called.


def book_changes(event: Event) -> Changes:
    book = payload_as(event, events_pb2.BookUpserted)
    category = Category(book.category)
    return Changes(books=(Book(book.book_id, book.title, book.author, category, book.active),))


def purchase_changes(event: Event) -> Changes:
    order = payload_as(event, events_pb2.PurchaseCompleted)
    return Changes(
        purchases=tuple(
            Purchase(order.order_id, order.user_id, line.book_id, line.quantity)
            for line in order.lines
        )
    )


Translator = Callable[[Event], Changes]
# events.routes names the functions above: imported from this module itself.
TRANSLATORS = cast(dict[str, Translator], handlers(CONSUMER))


def learn(index: RecommendationIndex, changes: Changes) -> None:
    """Teach the in-memory index what the store has just committed."""
    for book in changes.books:
        index.upsert_book(book)
    for purchase in changes.purchases:
        index.add_purchase(purchase)


class StoreApplier:
    """The recommender's apply_batch: events of one type into the store in one
    transaction (one commit, one fsync); what the index must learn is kept,
    in the order the store committed it, until taken."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.learned: list[Changes] = []

    def __call__(
        self, consumer: str, events: Sequence[Event], translate: Translator, /
    ) -> set[str]:
        changes = [
            EventChange(event.event_id, event.event_type, c.books, c.purchases, event.occurred_at)
            for event, c in ((event, translate(event)) for event in events)
        ]
        new: set[str] = set()
        for event, result in zip(events, self.store.apply_events(changes), strict=True):
            if result.new:
                new.add(event.event_id)
                # Only what the store took: not a book change older than its own.
                self.learned.append(Changes(result.books, result.purchases))
        return new

    def take_learned(self) -> list[Changes]:
        learned, self.learned = self.learned, []
        return learned


def delivery_of(message: AbstractIncomingMessage) -> Delivery:
    return delivery(message.body, message.headers, partial(getattr, message))


@dataclass(slots=True)
class _Reading:
    """One reading of the history stream, up to this replica's own marker."""

    marker: str
    # Resolved once every event before the marker is in the store.
    done: asyncio.Future[None]
    first_offset: int | None = None


# A delivered message, and the reading of the history it belongs to (None: the queue's).
_Delivered = tuple[AbstractIncomingMessage, _Reading | None]
R = TypeVar("R")
X = TypeVar("X")


class EventsConsumer:
    """Consumes this replica's queue into ``store`` and ``index``, beside the gRPC server.

    ``start()`` returns at once: connecting (with backoff while the broker is
    unreachable) happens in the background, so a dead broker never keeps
    the server from serving. After a connection loss it reconnects, to the
    next node of the cluster first, and resumes consuming.

    Messages are handled in batches of what has arrived (up to the
    prefetch), each event type's in one transaction; the index learns the
    changes in the order the store committed them.

    Catching up: until its store records having done it once, the replica
    (1) declares and binds its queue, (2) publishes a marker with an id of its
    own into the history stream, and only there, (3) reads the stream from its
    first event, applying each as if it came from the queue, until the
    marker, and (4) records that in the store, then consumes its queue.
    Everything the queue missed was published before it was bound, so before
    the marker; what both hold is a duplicate to the inbox. ``caught_up`` is
    set then (or at once for a store that did it before, or when the broker
    has no history stream): the server says SERVING only after it.
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
        log_each: bool = False,
    ) -> None:
        self.store = store
        self.index = index
        self.topology = topology
        self.spec = topology.recommender_queue(instance)
        self.history = topology.history
        self._nodes = BrokerNodes(amqp_url)
        self._instance = instance
        self._prefetch = prefetch
        # The queue's batches are bounded by its prefetch anyway.
        self._batch_limit = max(prefetch, HISTORY_PREFETCH)
        self._connect_timeout = connect_timeout
        self._backoff = Backoff(0.5, max_backoff)
        self._publish_timeout = publish_timeout
        self._stop_timeout = stop_timeout
        self._connection: AbstractConnection | None = None
        self._dead_letters: AbstractExchange | None = None
        self._deliveries: asyncio.Queue[_Delivered | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._subscribed = False
        self._busy = False
        self._stopping = False
        self._applier = StoreApplier(store)
        self._queue, self._history_queue = (
            EventQueue[Translator, AbstractIncomingMessage](
                consumer=CONSUMER,
                queue=name,
                handlers=TRANSLATORS,
                apply_batch=self._applier,
                delivery_limit=topology.delivery_limit,
                stream=stream,
                log_each=log_each,
            )
            for name, stream in ((self.spec.name, False), (self.history.name, True))
        )
        # Messages settled, by result ("applied", "duplicate", "malformed", ...).
        self.results = self._queue.results
        # The same for the events read from the history stream ("skipped": see
        # EventQueue.decide_history).
        self.history_results = self._history_queue.results
        self.caught_up = asyncio.Event()
        self._reading: _Reading | None = None

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
        if await asyncio.to_thread(self.store.has_caught_up, self.history.name):
            self.caught_up.set()
        link = asyncio.create_task(self._stay_connected(), name=f"connect {self.spec.name}")
        try:
            await self._consume()
        finally:
            link.cancel()
            await asyncio.wait({link})

    async def _consume(self) -> None:
        while not self._stopping:
            delivered = await self._deliveries.get()
            if delivered is None:
                break
            # What has arrived meanwhile goes with it: one transaction, one fsync.
            batch = [delivered]
            while len(batch) < self._batch_limit and not self._deliveries.empty():
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
        while not self._stopping:
            try:
                # Held by self at once, so stop() closes it whatever happens next.
                self._connection, node = await self._open()
                lost = _closed(self._connection)
                # The broker may close the channel alone (a publish to an
                # exchange deleted meanwhile): that ends consuming just the same.
                _closed(await self._subscribe(self._connection, lost), lost)
            except Exception as exc:
                wait = self._backoff.next()
                log.warning(
                    "events: cannot consume %s from %r (%s: %s); retrying in %.1fs",
                    self.spec.name,
                    self._nodes,
                    type(exc).__name__,
                    exc,
                    wait,
                )
                connection, self._connection = self._connection, None
                if connection is not None:
                    await _close_quietly(connection)
                await asyncio.sleep(wait)
                continue
            self._subscribed = True
            self._backoff.reset()
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

    async def _subscribe(
        self, connection: AbstractConnection, lost: asyncio.Future[BaseException | None]
    ) -> AbstractChannel:
        # on_return_raises: a parked message the broker cannot route is an error.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=self._prefetch)
        exists = await queue_exists(connection, self.spec.name)
        gone = not exists and self.caught_up.is_set()
        if gone:
            # It expired (RECOMMENDER_QUEUE_EXPIRES_MS unused: this replica was
            # away that long) or was deleted: what was published meanwhile is
            # only in the history. Forgotten before the queue is made again,
            # so a crash while reading it leaves the reading still to do.
            log.warning(
                "events: %s was gone (expired while this replica was away, or deleted):"
                " reading %s again",
                self.spec.name,
                self.history.name,
            )
            await asyncio.to_thread(self.store.forget_caught_up, self.history.name)
        queue = await declare_queue(channel, self.topology, self.spec, exists=exists)
        _, self._dead_letters = await declare_exchanges(channel, self.topology)
        if gone or not self.caught_up.is_set():
            # After the queue is bound, which now holds every event to come.
            await self._catch_up(connection, lost)
        await queue.consume(self._on_message)
        await _on_consumer_cancelled(channel, lost)
        return channel

    async def _catch_up(
        self, connection: AbstractConnection, lost: asyncio.Future[BaseException | None]
    ) -> None:
        """Read the history stream from its start up to a marker published now.

        Interrupted (the connection lost), it starts again from the start
        with a new marker after the reconnect: the inbox absorbs what it reads
        twice. Events routed before the queue was bound are in the stream
        before the marker, which is published after the bind is confirmed. (On
        a cluster an event routed on another node just before the bind travels
        to the stream while the bind's confirm and the marker make a round
        trip through this client: it arrives first unless that node's link is
        slower than the round trip.)
        """
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            stream = await channel.declare_queue(self.history.name, passive=True)
        except ChannelNotFoundEntity:
            # The relay declares it before its first publish: none means no
            # event was published yet (a first start, the recommender up
            # before the relay), unless by a relay older than the stream.
            log.info(
                "events: no history stream %s yet, so nothing published before %s to read"
                " (if a relay older than the history stream published events, send them"
                " with `manage.py replay_events --consumer recommender.%s`)",
                self.history.name,
                self.spec.name,
                self._instance,
            )
            self.caught_up.set()
            return
        reading = _Reading(uuid.uuid4().hex, asyncio.get_running_loop().create_future())
        started = time.monotonic()
        try:
            # A stream delivers only within a prefetch, to a consumer that acks.
            await channel.set_qos(prefetch_count=HISTORY_PREFETCH)
            # Straight into the stream (the default exchange routes by name):
            # no queue gets it.
            await channel.default_exchange.publish(
                aio_pika.Message(
                    b"",
                    message_id=reading.marker,
                    type=HISTORY_MARKER,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=self.history.name,
                mandatory=True,
                timeout=self._publish_timeout,
            )
            self._reading = reading

            async def on_message(message: AbstractIncomingMessage) -> None:
                self._deliveries.put_nowait((message, reading))

            await stream.consume(on_message, arguments={STREAM_OFFSET_HEADER: "first"})
            log.info("events: catching up on %s from its first event", self.history.name)
            closed = _closed(channel)
            await asyncio.wait((reading.done, closed, lost), return_when=asyncio.FIRST_COMPLETED)
            if not reading.done.done():
                reason = closed.result() if closed.done() else lost.result() if lost.done() else ""
                raise ConnectionError(f"lost {self.history.name} while catching up ({reason!r})")
        finally:
            self._reading = None
            await _close_quietly(channel)
        self.caught_up.set()
        log.info(
            "events: caught up on %s in %.1fs: %s",
            self.history.name,
            time.monotonic() - started,
            ", ".join(f"{n} {result}" for result, n in sorted(self.history_results.items()))
            or "no event",
        )

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._deliveries.put_nowait((message, None))

    async def _handle(self, batch: list[_Delivered]) -> None:
        live = []
        history = []
        current = self._reading
        for message, reading in batch:
            try:
                message.channel  # noqa: B018  (raises for a closed channel)
            except ChannelInvalidStateError:
                # Delivered before a reconnect: the broker has requeued it already.
                continue
            if reading is None:
                live.append(message)
            elif reading is current and not reading.done.done():
                history.append(message)
            # Else read past the marker (the queue holds it), or by a reading given up.
        if current is not None and history:
            await self._read_history(current, history)
        if not live:
            return
        step: Step[AbstractIncomingMessage] = await self._apply(
            self._queue.handle, [(message, delivery_of(message)) for message in live]
        )
        for settle in step.settle:
            try:
                await self._settle(settle.message, settle.decision)
            except Exception as exc:
                # Unacked, it comes back (on this channel's end at the latest);
                # the inbox makes that a no-op.
                log.warning("events: could not settle a message (%r); it will be redelivered", exc)
                continue
            self._queue.settled(settle.delivery, settle.decision)

    async def _apply(self, decide: Callable[[X], R], deliveries: X) -> R:
        """``decide`` (the queue's or the history's) on a worker thread; then the
        index learns what the store took, in the order it committed it."""
        decided = await asyncio.to_thread(decide, deliveries)
        for changes in self._applier.take_learned():
            learn(self.index, changes)
        return decided

    async def _read_history(
        self, reading: _Reading, messages: list[AbstractIncomingMessage]
    ) -> None:
        if reading.first_offset is None:
            offset = (messages[0].headers or {}).get(STREAM_OFFSET_HEADER, 0)
            reading.first_offset = offset if isinstance(offset, int) else 0
            if reading.first_offset:
                log.warning(
                    "events: %s starts at offset %d: its oldest events were dropped"
                    " (EVENTS_HISTORY_MAX_BYTES); this replica misses those not published"
                    " again since, unless sent with `manage.py replay_events`",
                    self.history.name,
                    reading.first_offset,
                )
        events = []
        reached = False
        for message in messages:
            if message.type == HISTORY_MARKER:
                if message.message_id == reading.marker:
                    reached = True
                    break
                continue  # another replica's
            events.append(message)
        if events:
            deliveries = [delivery_of(message) for message in events]
            decisions = await self._apply(self._history_queue.decide_history, deliveries)
            for delivery, decision in zip(deliveries, decisions, strict=True):
                self._history_queue.settled(delivery, decision)
        if reached:
            await asyncio.to_thread(self.store.record_caught_up, self.history.name)
            reading.done.set_result(None)
            return
        try:
            # An ack on a stream only makes room in the prefetch for more.
            await messages[-1].ack(multiple=True)
        except Exception as exc:  # the channel is gone: the reading starts again
            log.debug("events: acking history failed: %r", exc)

    async def _settle(self, message: AbstractIncomingMessage, decision: Decision) -> None:
        if decision.parked is not None:
            try:
                # Returns once confirmed; a message the broker cannot route raises.
                if self._dead_letters is None:
                    raise RuntimeError("not connected")
                await self._dead_letters.publish(
                    aio_pika.Message(message.body, **decision.parked),
                    routing_key=self.spec.name,
                    mandatory=True,
                    timeout=self._publish_timeout,
                )
            except Exception as exc:
                log.error("events: parking a message failed (%r); requeued instead", exc)
                await message.nack(requeue=True)
                raise
            await message.ack()
        elif decision.action is Action.REQUEUE:
            await message.nack(requeue=True)
        else:
            await message.ack()


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


class ConsumerCancelled(Exception):
    """The broker ended this replica's consumer: its queue was deleted."""


async def _on_consumer_cancelled(
    channel: AbstractChannel, lost: asyncio.Future[BaseException | None]
) -> None:
    """Resolve ``lost`` when the broker cancels a consumer of ``channel``.

    A deleted queue ends its consumers with basic.cancel and leaves the
    channel and connection open: without this the replica would stay
    connected and learn nothing more. Treated as a lost connection, it
    subscribes again, which declares the queue again.
    """
    underlay = await channel.get_underlay_channel()

    def cancelled(frame: object) -> None:
        if not lost.done():
            lost.set_result(ConsumerCancelled("the broker cancelled the consumer (queue deleted?)"))

    underlay.on_consumer_cancel_callbacks.add(cancelled)


def _close_if_connected(attempt: asyncio.Future[tuple[AbstractConnection, str]]) -> None:
    if not attempt.cancelled() and attempt.exception() is None:
        closing = asyncio.ensure_future(_close_quietly(attempt.result()[0]))
        _background.add(closing)
        closing.add_done_callback(_background.discard)


# Strong references to fire-and-forget tasks, which the loop holds only weakly.
_background: set[asyncio.Future[None]] = set()


async def _close_quietly(closable: AbstractConnection | AbstractChannel) -> None:
    try:
        await asyncio.wait_for(closable.close(), 5)
    except Exception as exc:  # never opened, or already gone
        log.debug("events: closing a failed connection or channel: %r", exc)
