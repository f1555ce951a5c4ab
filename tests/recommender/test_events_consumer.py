"""The recommender learning from domain events: translation alone, then over the real RabbitMQ.

Each broker test has a namespace of its own (queues and exchanges deleted
afterwards), a real gRPC server on port 0 and the consumer in the server's
event loop, as ``python -m recommender`` runs them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aio_pika
import grpc
import pytest
from aio_pika.abc import AbstractConnection, AbstractExchange
from google.protobuf.message import Message as ProtoMessage
from grpc_health.v1 import health_pb2, health_pb2_grpc
from yarl import URL

from bookstore.events.v1 import events_pb2
from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from events.amqp import DEFAULT_AMQP_URL, declare_exchanges, queue_exists
from events.consuming import Action, Delivery
from events.contracts import (
    BOOK_UPSERTED,
    PROMOTION_APPLIED,
    PURCHASE_COMPLETED,
    MalformedEvent,
    book_category,
    unwrap,
    wrap,
)
from events.dead_letters import CONSUMER_HEADER, QUEUE_HEADER, REASON_HEADER
from events.topology import HISTORY_MARKER, Topology
from recommender.engine import Book, Category, Purchase, RecommendationIndex
from recommender.events_consumer import (
    TRANSLATORS,
    Changes,
    EventsConsumer,
    learn,
    purchase_changes,
)
from recommender.server import RunningServer, start_server
from recommender.store import Store
from tests.events.declare import declare_history_stream
from tests.grpc_server import ServerThread
from tests.payloads import promotion_payload
from tests.recommender.apply import apply_deliveries, apply_delivery
from tests.recommender.conftest import BOOKS, PURCHASES
from tests.recommender.inbox import is_applied
from tests.recommender.process import RecommenderProcess

AMQP_URL = os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL
INSTANCE = "test"
H = Category.HISTORY


def book_upserted(book_id: int, title: str, category: int, *, active: bool = True, **fields):
    return events_pb2.BookUpserted(
        book_id=book_id,
        title=title,
        author=fields.pop("author", "An Author"),
        category=book_category(category),
        active=active,
        price="9.99",
        currency="USD",
        **fields,
    )


def purchase_completed(order_id: int, user_id: int, *lines: tuple[int, int] | tuple[int, int, int]):
    """``lines``: (book_id, category) or (book_id, category, quantity)."""
    quantities = [line[2] if len(line) == 3 else 1 for line in lines]
    subtotal = f"{Decimal('9.99') * sum(quantities):.2f}"
    return events_pb2.PurchaseCompleted(
        order_id=order_id,
        user_id=user_id,
        currency="USD",
        lines=[
            events_pb2.PurchaseLine(
                book_id=line[0],
                category=book_category(line[1]),
                quantity=quantity,
                unit_price="9.99",
                line_total=f"{Decimal('9.99') * quantity:.2f}",
            )
            for line, quantity in zip(lines, quantities, strict=True)
        ],
        subtotal=subtotal,
        discount="0.00",
        total=subtotal,
    )


class UnsupportedEvent(ValueError):
    """A well-formed event the recommender fails on (see bug())."""


def changes_of(event):
    return TRANSLATORS[event.event_type](event)


# An order the recommender fails on, with the bug() fixture: the contract
# refuses every invalid event before a translator sees it, so only a bug is
# left to be retried, then parked.
BUGGY_ORDER = 4444


@pytest.fixture
def bug(monkeypatch) -> None:
    def translate(event):
        if event.payload.order_id == BUGGY_ORDER:
            raise UnsupportedEvent(f"order {BUGGY_ORDER} meets a bug")
        return purchase_changes(event)

    monkeypatch.setitem(TRANSLATORS, PURCHASE_COMPLETED, translate)


def envelope(payload: ProtoMessage, *, event_id: str | None = None, **fields: Any) -> bytes:
    wrapped = wrap(payload, correlation_id="test-corr", producer="tests", event_id=event_id)
    for name, value in fields.items():
        setattr(wrapped, name, value)
    return wrapped.SerializeToString()


def wait_until(condition: Callable[[], object], *, timeout: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


# --- translation and the store, without a broker ---------------------------


def test_a_book_event_becomes_the_book_with_its_active_flag():
    event = unwrap(envelope(book_upserted(7, "Dune", pb.SCIENCE_FICTION, active=False)))
    assert changes_of(event) == Changes(
        books=(Book(7, "Dune", "An Author", Category.SCIENCE_FICTION, active=False),)
    )


def test_a_book_change_older_than_the_one_applied_is_neither_stored_nor_learned(tmp_path):
    """Order by occurred_at, not by arrival: an older BookUpserted replayed
    from the dead letters, or requeued behind a newer one, is recorded and
    acked, and changes nothing."""
    noon = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def upserted(title: str, at: datetime) -> bytes:
        payload = book_upserted(7, title, H)
        return wrap(
            payload, correlation_id="c", producer="tests", occurred_at=at
        ).SerializeToString()

    index = RecommendationIndex.build([], [])
    with closing(Store(tmp_path / "s.sqlite3")) as store:
        for body in (
            upserted("New title", noon),
            upserted("Old title", noon - timedelta(minutes=5)),
        ):
            handled = apply_delivery(store, body=body, headers=None, delivery_limit=5)
            assert handled.outcome.result == "applied"
            learn(index, handled.learned)
        assert [b.title for b in store.books()] == ["New title"]
    [answer] = index.recommend(user_id=0, category=H, max_results=5)
    assert answer.book.title == "New title"


def test_a_purchase_becomes_one_purchase_per_book_with_order_user_and_quantity():
    event = unwrap(envelope(purchase_completed(42, 9, (5, 1, 3), (6, 1))))
    assert changes_of(event) == Changes(
        purchases=(Purchase(42, 9, 5, quantity=3), Purchase(42, 9, 6, quantity=1))
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (book_upserted(7, "Poems", 99), "book 7 has category 99, unknown to this build"),
        (
            purchase_completed(42, 9, (5, 1), (6, 77)),
            "order 42 line 2 (book 6) has category 77, unknown to this build",
        ),
        (purchase_completed(42, 9, (5, 1, 0)), "quantity must be 1 to 10000, got 0"),
        (purchase_completed(0, 9, (5, 1)), "order_id must be > 0"),
        # The store keeps one row per (order, book), as the campaign ledger does.
        (purchase_completed(42, 9, (5, 1), (5, 1)), "order 42 lists book 5 twice"),
    ],
)
def test_what_this_build_cannot_apply_never_reaches_a_translator(payload, message):
    with pytest.raises(MalformedEvent, match=re.escape(message)):
        unwrap(envelope(payload))


def test_a_delivery_is_applied_once_and_the_index_learns_it_once():
    body = envelope(purchase_completed(42, 9, (5, 1), (6, 1)))
    with Store(":memory:") as store:
        first = apply_delivery(store, body=body, headers=None, delivery_limit=3)
        again = apply_delivery(store, body=body, headers={"x-delivery-count": 1}, delivery_limit=3)
        assert list(store.purchases()) == [Purchase(42, 9, 5), Purchase(42, 9, 6)]
    assert (first.outcome.action, first.outcome.result) == (Action.ACK, "applied")
    assert first.learned == Changes(purchases=(Purchase(42, 9, 5), Purchase(42, 9, 6)))
    assert (again.outcome.action, again.outcome.result) == (Action.ACK, "duplicate")
    assert again.learned is None


def test_an_order_seen_under_another_event_id_teaches_the_index_nothing_new():
    with Store(":memory:") as store:
        apply_delivery(
            store, body=envelope(purchase_completed(42, 9, (5, 1))), headers=None, delivery_limit=3
        )
        second = apply_delivery(
            store,
            body=envelope(purchase_completed(42, 9, (5, 1), (6, 1))),
            headers=None,
            delivery_limit=3,
        )
    assert second.learned == Changes(purchases=(Purchase(42, 9, 6),))


def test_malformed_bytes_are_parked_at_once_and_change_nothing():
    with Store(":memory:") as store:
        handled = apply_delivery(store, body=b"\x00junk", headers=None, delivery_limit=3)
        assert store.is_empty()
    assert handled.outcome.action is Action.PARK
    assert handled.outcome.reason.startswith("malformed: not an EventEnvelope")
    assert handled.learned is None


def test_a_failing_event_is_retried_then_parked_on_the_last_delivery_recording_nothing(bug):
    poison = envelope(purchase_completed(BUGGY_ORDER, 9, (5, 1)))
    event_id = unwrap(poison).event_id
    with Store(":memory:") as store:
        outcomes = [
            apply_delivery(store, body=poison, headers=headers, delivery_limit=3).outcome
            for headers in (None, {"x-delivery-count": 1}, {"x-delivery-count": 2})
        ]
        assert not is_applied(store, event_id)
        assert list(store.purchases()) == []
    assert [o.action for o in outcomes] == [Action.REQUEUE, Action.REQUEUE, Action.PARK]
    assert outcomes[-1].reason == f"failed: UnsupportedEvent: order {BUGGY_ORDER} meets a bug"


def test_an_envelope_with_an_impossible_time_is_parked_at_once():
    wrapped = wrap(book_upserted(7, "Dune", 1), correlation_id="c", producer="tests")
    wrapped.occurred_at.seconds = 2**62
    with Store(":memory:") as store:
        delivered = apply_delivery(
            store, body=wrapped.SerializeToString(), headers=None, delivery_limit=2
        )
        assert not is_applied(store, wrapped.event_id)
    assert delivered.outcome.action is Action.PARK
    assert "occurred_at is not a valid time" in delivered.outcome.reason


def test_a_batch_is_applied_once_each_and_learned_in_the_order_it_committed():
    sold = envelope(purchase_completed(42, 9, (5, 1)))
    bodies = [
        sold,
        envelope(book_upserted(30, "SPQR", H)),
        envelope(purchase_completed(43, 9, (6, 1))),
        sold,
    ]
    with Store(":memory:") as store:
        applied = apply_deliveries(store, [Delivery(b) for b in bodies], delivery_limit=3)
        assert list(store.purchases()) == [Purchase(42, 9, 5), Purchase(43, 9, 6)]
        assert [b.id for b in store.books()] == [30]
    assert [o.result for o in applied.outcomes] == ["applied", "applied", "applied", "duplicate"]
    # One transaction per event type, in the order each type first came.
    assert applied.learned == [
        Changes(purchases=(Purchase(42, 9, 5),)),
        Changes(purchases=(Purchase(43, 9, 6),)),
        Changes(books=(Book(30, "SPQR", "An Author", H),)),
    ]


def test_a_failing_event_in_a_batch_is_retried_alone_and_the_others_commit(bug):
    poison = envelope(purchase_completed(BUGGY_ORDER, 9, (5, 1)))
    first, last = (envelope(purchase_completed(order, 9, (5, 1))) for order in (42, 43))
    with Store(":memory:") as store:
        applied = apply_deliveries(
            store, [Delivery(first), Delivery(poison), Delivery(last)], delivery_limit=3
        )
        assert list(store.purchases()) == [Purchase(42, 9, 5), Purchase(43, 9, 5)]
        assert not is_applied(store, unwrap(poison).event_id)
    assert [o.action for o in applied.outcomes] == [Action.ACK, Action.REQUEUE, Action.ACK]
    assert applied.learned == [
        Changes(purchases=(Purchase(42, 9, 5),)),
        Changes(purchases=(Purchase(43, 9, 5),)),
    ]


def test_learning_changes_the_answers():
    index = RecommendationIndex.build(BOOKS, PURCHASES)
    learn(
        index,
        Changes(
            books=(Book(30, "SPQR", "Mary Beard", H), Book(31, "The Guns of August", "B. T.", H)),
            purchases=(Purchase(900, 3, 30), Purchase(900, 3, 31), Purchase(901, 5, 30)),
        ),
    )
    [together] = index.recommend(user_id=5, category=H, max_results=10)
    assert together.book.id == 31
    assert together.reason.name == "BOUGHT_TOGETHER"


# --- over the real RabbitMQ --------------------------------------------------


async def _delete_topology(topology: Topology, instance: str) -> None:
    spec = topology.recommender_queue(instance)
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        for queue in (spec.name, spec.dead_letter_queue, topology.history.name):
            await channel.queue_delete(queue)
        for exchange in (topology.exchange, topology.dead_letter_exchange):
            await channel.exchange_delete(exchange)


@pytest.fixture
def topology() -> Iterator[Topology]:
    """A namespace of this test's own, removed afterwards."""
    topology = Topology(namespace=f"test-{uuid.uuid4().hex[:8]}", delivery_limit=3)
    yield topology
    asyncio.run(_delete_topology(topology, INSTANCE))


class BrokerCutter:
    """A TCP relay in front of the broker that can drop every connection and
    refuse new ones for a while: a broker restart, as the consumer sees it,
    without disturbing anyone else's use of the shared broker."""

    def __init__(self, target: URL) -> None:
        self._target = target
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.refusing = False
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(self._target.host, self._target.port)
        self._open |= {writer, up_writer}
        await asyncio.gather(
            _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
        )

    async def cut(self) -> None:
        for writer in self._open:
            writer.transport.abort()
        self._open.clear()

    async def close(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()


@dataclass
class Live:
    """The gRPC server and the events consumer in one event loop, and a publisher."""

    thread: ServerThread
    running: RunningServer
    consumer: EventsConsumer
    channel: grpc.Channel
    db_path: Path
    topology: Topology
    publisher: AbstractConnection
    exchange: AbstractExchange

    def recommend(self, *, user_id: int = 0, category: int, max_results: int = 10) -> list:
        reply = pb_grpc.RecommendationsStub(self.channel).Recommend(
            pb.RecommendationRequest(
                user_id=user_id, category=book_category(category), max_results=max_results
            ),
            timeout=5,
        )
        return [
            (r.id, r.title, pb.RecommendationReason.Name(r.reason)) for r in reply.recommendations
        ]

    def ids(self, **request: int) -> list[int]:
        return [book_id for book_id, _, _ in self.recommend(**request)]

    def publish(self, routing_key: str, *bodies: bytes) -> None:
        """Persistent, mandatory, each confirmed by the broker before the next."""

        async def publish() -> None:
            for body in bodies:
                await self.exchange.publish(
                    aio_pika.Message(
                        body,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=uuid.uuid4().hex,
                    ),
                    routing_key=routing_key,
                    mandatory=True,
                    timeout=5,
                )

        self.thread.run(publish())

    def parked(self, *, expected: int, timeout: float = 10) -> list[aio_pika.abc.AbstractMessage]:
        """Take ``expected`` messages off the dead-letter queue, then any extras after a grace."""
        name = self.topology.recommender_queue(INSTANCE).dead_letter_queue

        async def take() -> list:
            channel = await self.publisher.channel()
            queue = await channel.get_queue(name)
            got: list = []
            deadline = time.monotonic() + timeout
            while len(got) < expected and time.monotonic() < deadline:
                message = await queue.get(no_ack=True, fail=False)
                if message is None:
                    await asyncio.sleep(0.02)
                else:
                    got.append(message)
            grace = time.monotonic() + 0.3
            while time.monotonic() < grace:
                if message := await queue.get(no_ack=True, fail=False):
                    got.append(message)
                await asyncio.sleep(0.02)
            await channel.close()
            return got

        return self.thread.run(take(), timeout=timeout + 5)

    def rows(self, sql: str) -> list[tuple]:
        with closing(sqlite3.connect(self.db_path)) as db:
            return db.execute(sql).fetchall()


@pytest.fixture
def start_live(tmp_path, topology) -> Iterator[Callable[..., Live]]:
    started: list[tuple[Live, Callable[[], None]]] = []

    def start(
        *, amqp_url: str = AMQP_URL, caught_up: bool = False, **consumer_options: Any
    ) -> Live:
        db_path = tmp_path / f"recommender-{len(started)}.sqlite3"
        with Store(db_path) as store:
            store.upsert_books(BOOKS)
            store.add_purchases(PURCHASES)
            if caught_up:  # a replica that read the history once, before
                store.record_caught_up(topology.history.name)
            index = RecommendationIndex.build(store.books(), store.purchases())
        thread = ServerThread()

        async def begin() -> tuple[RunningServer, EventsConsumer, AbstractConnection, Any]:
            running = await start_server(listen="127.0.0.1:0", index=index)
            consumer = EventsConsumer(
                store=Store(db_path),
                index=index,
                amqp_url=amqp_url,
                topology=topology,
                instance=INSTANCE,
                **consumer_options,
            )
            consumer.start()
            publisher = await aio_pika.connect(AMQP_URL, timeout=5)
            channel = await publisher.channel(publisher_confirms=True, on_return_raises=True)
            exchange, _ = await declare_exchanges(channel, topology)
            return running, consumer, publisher, exchange

        running, consumer, publisher, exchange = thread.run(begin())
        channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        live = Live(thread, running, consumer, channel, db_path, topology, publisher, exchange)

        def close() -> None:
            channel.close()
            thread.run(consumer.stop())
            consumer.store.close()
            thread.run(publisher.close())
            thread.run(running.server.stop(None))
            thread.close()

        started.append((live, close))
        wait_until(lambda: consumer.consuming, what="the consumer to bind its queue")
        return live

    yield start
    for _, close in reversed(started):
        close()


def test_book_events_add_change_and_retire_books_in_the_answers(start_live):
    live = start_live()
    assert live.ids(category=pb.FANTASY) == []
    assert live.ids(category=pb.SCIENCE_FICTION) == [5, 6, 7]

    live.publish(
        BOOK_UPSERTED,
        envelope(book_upserted(20, "The Hobbit", pb.FANTASY, author="J. R. R. Tolkien")),
        envelope(book_upserted(6, "Neuromancer", pb.SCIENCE_FICTION, active=False)),
        envelope(book_upserted(7, "The Dispossessed", pb.SCIENCE_FICTION)),
    )
    wait_until(lambda: live.consumer.results["applied"] == 3, what="three books applied")
    assert live.recommend(category=pb.FANTASY) == [(20, "The Hobbit", "CATALOG")]
    assert live.recommend(category=pb.SCIENCE_FICTION) == [
        (5, "Dune", "BEST_SELLER"),
        (7, "The Dispossessed", "CATALOG"),
    ]
    assert live.rows("SELECT id, title, active FROM books WHERE id IN (6, 20) ORDER BY id") == [
        (6, "Neuromancer", 0),
        (20, "The Hobbit", 1),
    ]


def test_after_customers_buy_a_and_b_together_a_buyer_of_a_is_recommended_b(start_live):
    live = start_live()
    a, b = 30, 34
    live.publish(
        BOOK_UPSERTED,
        *(envelope(book_upserted(i, f"History {i}", pb.HISTORY)) for i in range(a, b + 1)),
    )
    live.publish(PURCHASE_COMPLETED, envelope(purchase_completed(500, 12, (a, pb.HISTORY))))
    wait_until(lambda: live.consumer.results["applied"] == 6, what="books and a first order")
    # Customer 12 bought A alone: nothing was bought with it yet.
    assert live.recommend(user_id=12, category=pb.HISTORY, max_results=1) == [
        (31, "History 31", "CATALOG")
    ]

    live.publish(
        PURCHASE_COMPLETED,
        envelope(purchase_completed(501, 10, (a, pb.HISTORY), (b, pb.HISTORY))),
        envelope(purchase_completed(502, 11, (b, pb.HISTORY), (a, pb.HISTORY))),
    )
    wait_until(lambda: live.consumer.results["applied"] == 8, what="the two orders of A and B")
    assert live.recommend(user_id=12, category=pb.HISTORY, max_results=1) == [
        (b, f"History {b}", "BOUGHT_TOGETHER")
    ]


def test_the_same_event_delivered_twice_is_applied_once(start_live):
    live = start_live()
    order = envelope(purchase_completed(600, 20, (1, pb.MYSTERY, 3), (2, pb.MYSTERY)))
    live.publish(PURCHASE_COMPLETED, order, order)
    wait_until(
        lambda: live.consumer.results == {"applied": 1, "duplicate": 1}, what="one applied, one dup"
    )
    assert live.rows("SELECT count(*) FROM inbox") == [(1,)]
    assert live.rows("SELECT book_id, quantity FROM purchases WHERE order_id = 600") == [
        (1, 3),
        (2, 1),
    ]
    # Three units of book 1 (once, not six) outsell Gone Girl's two.
    assert live.ids(category=pb.MYSTERY, max_results=2) == [1, 3]


def test_malformed_messages_are_parked_with_their_reason_and_good_ones_still_flow(start_live):
    live = start_live()
    garbage = b"\x00this is not protobuf"
    from_the_future = envelope(book_upserted(21, "Later", pb.FANTASY), schema_version=99)
    live.publish(BOOK_UPSERTED, garbage, from_the_future)
    live.publish(BOOK_UPSERTED, envelope(book_upserted(22, "Good", pb.FANTASY)))
    wait_until(lambda: live.consumer.results["applied"] == 1, what="the good event applied")

    parked = live.parked(expected=2)
    assert [m.body for m in parked] == [garbage, from_the_future]
    reasons = [m.headers[REASON_HEADER] for m in parked]
    assert reasons[0].startswith("malformed: not an EventEnvelope")
    assert reasons[1] == "malformed: unknown schema version 99 (this build reads 1)"
    for message in parked:
        assert message.headers[CONSUMER_HEADER] == "recommender"
        assert message.headers[QUEUE_HEADER] == live.topology.recommender_queue(INSTANCE).name
    assert live.consumer.results == {"malformed": 2, "applied": 1}
    assert live.ids(category=pb.FANTASY) == [22]


def publish_to_history(topology: Topology, *messages: aio_pika.Message) -> None:
    """Straight into the history stream, as a replica publishes its marker."""

    async def run() -> None:
        async with await aio_pika.connect(AMQP_URL, timeout=5) as connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            for message in messages:
                await channel.default_exchange.publish(
                    message, routing_key=topology.history.name, mandatory=True, timeout=5
                )

    asyncio.run(run())


def test_a_new_replica_reads_the_history_to_its_marker_skipping_what_it_cannot_apply(
    start_live, topology, bug, caplog
):
    caplog.set_level(logging.INFO, logger="recommender.events")
    declare_history_stream(topology)
    book = envelope(book_upserted(30, "SPQR", pb.HISTORY))
    poison = envelope(purchase_completed(BUGGY_ORDER, 9, (30, pb.HISTORY)))
    publish_to_history(
        topology,
        aio_pika.Message(book),
        # Another replica's marker, then what no queue would take either.
        aio_pika.Message(b"", message_id="another-replica", type=HISTORY_MARKER),
        aio_pika.Message(b"\x00not an envelope"),
        aio_pika.Message(poison),
        # A well-formed event of a type the recommender does not apply.
        aio_pika.Message(envelope(promotion_payload())),
        aio_pika.Message(envelope(purchase_completed(900, 9, (30, pb.HISTORY), (5, 1)))),
        aio_pika.Message(book),
    )

    live = start_live()
    assert live.consumer.caught_up.is_set()
    assert live.consumer.history_results == {
        "applied": 2,
        "duplicate": 1,
        "skipped": 3,
    }
    # Skipped, where a queue would park them: each named with its place and why.
    skipped = [r.getMessage() for r in caplog.records if "events: skipped" in r.getMessage()]
    assert len(skipped) == 3
    assert "at offset 2 of" in skipped[0]
    assert "malformed: not an EventEnvelope" in skipped[0]
    assert skipped[1].startswith(f"events: skipped {unwrap(poison).event_id} at offset 3 of")
    # Tried as often as a queue delivers it (the limit is 3), then skipped.
    assert skipped[1].endswith(f"failed: UnsupportedEvent: order {BUGGY_ORDER} meets a bug")
    assert skipped[2].endswith("unhandled: recommender has no handler for " + PROMOTION_APPLIED)
    assert live.rows("SELECT book_id FROM purchases WHERE order_id = 900") == [(5,), (30,)]
    assert live.rows(f"SELECT count(*) FROM purchases WHERE order_id = {BUGGY_ORDER}") == [(0,)]
    assert live.ids(category=pb.HISTORY) == [30]

    # From now on the queue brings the events, and the history is not read again.
    live.publish(BOOK_UPSERTED, envelope(book_upserted(31, "The Guns of August", pb.HISTORY)))
    wait_until(lambda: live.consumer.results == {"applied": 1}, what="the queue's event")
    assert live.ids(category=pb.HISTORY) == [30, 31]
    assert live.rows("SELECT stream FROM caught_up") == [(topology.history.name,)]


def test_a_replica_whose_queue_expired_while_it_was_away_reads_the_history_again(
    start_live, topology, caplog
):
    """A slot scaled away for longer than its queue's expiry, then back: its
    store had caught up, but what was published meanwhile is only in the history."""
    caplog.set_level(logging.INFO, logger="recommender.events")
    declare_history_stream(topology)
    publish_to_history(
        topology,
        aio_pika.Message(envelope(book_upserted(30, "SPQR", pb.HISTORY))),
        aio_pika.Message(envelope(purchase_completed(900, 9, (30, pb.HISTORY), (5, 1)))),
    )

    live = start_live(caught_up=True)
    assert live.consumer.history_results == {"applied": 2}
    assert live.rows("SELECT book_id FROM purchases WHERE order_id = 900") == [(5,), (30,)]
    assert live.ids(category=pb.HISTORY) == [30]
    assert any("was gone" in r.getMessage() for r in caplog.records)
    # Made again with its expiry; read once more only if it goes again.
    assert live.rows("SELECT stream FROM caught_up") == [(topology.history.name,)]


def test_a_queue_an_earlier_version_declared_without_expiry_is_taken_as_it_is(start_live, topology):
    spec = topology.recommender_queue(INSTANCE)

    async def declare_as_before() -> None:
        async with await aio_pika.connect(AMQP_URL, timeout=5) as connection:
            channel = await connection.channel()
            arguments = {k: v for k, v in spec.arguments.items() if k != "x-expires"}
            await channel.declare_queue(spec.name, durable=True, arguments=arguments)

    asyncio.run(declare_as_before())
    live = start_live()
    live.publish(BOOK_UPSERTED, envelope(book_upserted(20, "The Hobbit", pb.FANTASY)))
    wait_until(lambda: live.consumer.results == {"applied": 1}, what="the event applied")


def test_a_history_whose_oldest_events_were_dropped_says_so(start_live, topology, caplog):
    caplog.set_level(logging.INFO, logger="recommender.events")

    async def declare_small_history() -> None:
        async with await aio_pika.connect(AMQP_URL, timeout=5) as connection:
            channel = await connection.channel()
            # 2 kB kept, in segments of 1 kB: the oldest go as it fills.
            await channel.declare_queue(
                topology.history.name,
                durable=True,
                arguments={
                    **topology.history.arguments,
                    "x-max-length-bytes": 2000,
                    "x-stream-max-segment-size-bytes": 1000,
                },
            )

    asyncio.run(declare_small_history())
    publish_to_history(
        topology,
        *(aio_pika.Message(envelope(book_upserted(100 + n, "Old", pb.HISTORY))) for n in range(40)),
    )

    live = start_live()
    [dropped] = [r.getMessage() for r in caplog.records if "were dropped" in r.getMessage()]
    assert re.match(rf"events: {re.escape(topology.history.name)} starts at offset [1-9]", dropped)
    assert 0 < live.consumer.history_results["applied"] < 40


def test_a_channel_the_broker_closes_is_opened_again_and_nothing_is_lost(start_live):
    """An operator deleted the dead-letter exchange: parking fails, and the
    broker closes the consumer's channel (404), not its connection."""
    live = start_live()
    live.publish(BOOK_UPSERTED, envelope(book_upserted(30, "Before", pb.FANTASY)))
    wait_until(lambda: live.ids(category=pb.FANTASY) == [30], what="the first book")

    async def delete_dead_letter_exchange() -> None:
        channel = await live.publisher.channel()
        await channel.exchange_delete(live.topology.dead_letter_exchange)
        await channel.close()

    live.thread.run(delete_dead_letter_exchange())
    garbage = b"\x00not an envelope"
    live.publish(BOOK_UPSERTED, garbage)
    # Subscribing again declares the exchange again; the message is parked then.
    assert [m.body for m in live.parked(expected=1, timeout=20)] == [garbage]
    live.publish(BOOK_UPSERTED, envelope(book_upserted(31, "After", pb.FANTASY)))
    wait_until(lambda: live.ids(category=pb.FANTASY) == [30, 31], what="the second book")
    wait_until(lambda: live.consumer.consuming, what="consuming again")


def with_line(payload, **fields):
    for name, value in fields.items():
        setattr(payload.lines[0], name, value)
    return payload


# The payloads of issue 20 that consumers used to judge differently: each is
# refused by the contract, in this queue as in the worker's.
INVALID_PURCHASES = [
    (with_line(purchase_completed(71, 9, (5, 1)), quantity=-5), "quantity must be 1 to 10000"),
    (with_line(purchase_completed(72, 9, (5, 1)), category=77), "has category 77, unknown"),
    (purchase_completed(-5, 9, (5, 1)), "order_id must be > 0, got -5"),
    (purchase_completed(73, 9), "order 73 has no lines"),
    (
        with_line(purchase_completed(74, 9, (5, 1)), quantity=2_147_483_647),
        "quantity must be 1 to 10000, got 2147483647",
    ),
]


def test_invalid_purchases_are_parked_with_the_contracts_reason_and_change_nothing(start_live):
    live = start_live()
    bodies = [envelope(payload) for payload, _ in INVALID_PURCHASES]
    live.publish(PURCHASE_COMPLETED, *bodies)
    live.publish(PURCHASE_COMPLETED, envelope(purchase_completed(75, 9, (5, pb.SCIENCE_FICTION))))
    wait_until(lambda: live.consumer.results["applied"] == 1, what="the good order applied")

    parked = live.parked(expected=len(bodies))
    assert [m.body for m in parked] == bodies
    for message, (_, reason) in zip(parked, INVALID_PURCHASES, strict=True):
        assert message.headers[REASON_HEADER].startswith("malformed: ")
        assert reason in message.headers[REASON_HEADER]
    assert live.consumer.results == {"malformed": len(bodies), "applied": 1}
    sql = "SELECT order_id, book_id, quantity FROM purchases WHERE order_id BETWEEN -5 AND 75"
    assert live.rows(sql) == [(75, 5, 1)]


def test_a_book_dated_far_ahead_is_parked_and_later_edits_still_apply(start_live):
    live = start_live()
    far_ahead = wrap(
        book_upserted(7, "Pinned forever", pb.SCIENCE_FICTION),
        correlation_id="c",
        producer="tests",
        occurred_at=datetime(9999, 1, 1, tzinfo=UTC),
    ).SerializeToString()
    live.publish(BOOK_UPSERTED, far_ahead)
    [parked] = live.parked(expected=1)
    assert parked.headers[REASON_HEADER].startswith(
        "malformed: occurred_at 9999-01-01T00:00:00+00:00 is in the future"
    )

    live.publish(BOOK_UPSERTED, envelope(book_upserted(7, "The Real Edit", pb.SCIENCE_FICTION)))
    wait_until(lambda: live.consumer.results["applied"] == 1, what="the real edit applied")
    assert live.rows("SELECT title FROM books WHERE id = 7") == [("The Real Edit",)]


def test_an_event_failing_every_time_is_parked_after_the_delivery_limit_while_others_flow(
    start_live, bug
):
    live = start_live()
    poison = envelope(purchase_completed(BUGGY_ORDER, 30, (5, pb.SCIENCE_FICTION), (6, 1)))
    live.publish(PURCHASE_COMPLETED, poison)
    live.publish(
        PURCHASE_COMPLETED,
        *(envelope(purchase_completed(701 + n, 31 + n, (8, pb.SELF_HELP))) for n in range(3)),
    )
    wait_until(lambda: live.consumer.results["applied"] == 3, what="the good orders applied")

    [parked] = live.parked(expected=1)
    assert parked.body == poison
    assert parked.headers[REASON_HEADER] == (
        f"failed: UnsupportedEvent: order {BUGGY_ORDER} meets a bug"
    )
    # Delivered three times (the limit): requeued twice, parked by the third
    # (counted once acked, just after the parked copy is confirmed).
    wait_until(
        lambda: live.consumer.results == {"applied": 3, "retry": 2, "failed": 1},
        what="two retries and a park",
    )
    assert live.rows(f"SELECT count(*) FROM purchases WHERE order_id = {BUGGY_ORDER}") == [(0,)]
    assert live.rows("SELECT count(*) FROM inbox") == [(3,)]


def test_a_burst_is_applied_exactly_once_and_learned_as_the_store_holds_it(start_live, bug):
    live = start_live()
    orders = [
        envelope(
            purchase_completed(
                # One line per book: a second only when it is another book.
                900 + n,
                40 + n % 7,
                *((b, 0) for b in dict.fromkeys((1 + n % 8, 1 + n * 3 % 8))),
            )
        )
        for n in range(120)
    ]
    poison = envelope(purchase_completed(BUGGY_ORDER, 5, (5, 1), (6, 1)))
    books = [envelope(book_upserted(50 + n, f"Burst {n}", pb.MYSTERY)) for n in range(10)]
    # Published in one go, they arrive faster than one at a time applies them.
    live.publish(PURCHASE_COMPLETED, *orders[:60], poison, *orders[:5], *orders[60:])
    live.publish(BOOK_UPSERTED, *books)
    wait_until(
        lambda: live.consumer.results == {"applied": 130, "duplicate": 5, "retry": 2, "failed": 1},
        what="every event settled",
    )
    assert live.rows("SELECT count(*) FROM inbox") == [(130,)]
    assert live.rows("SELECT count(DISTINCT order_id) FROM purchases WHERE order_id >= 900") == [
        (120,)
    ]
    with Store(live.db_path) as store:
        rebuilt = RecommendationIndex.build(store.books(), store.purchases())
    for user_id in (0, 40, 43, 46):
        expected = [
            (r.book.id, r.book.title, r.reason.name)
            for r in rebuilt.recommend(user_id=user_id, category=Category.MYSTERY, max_results=10)
        ]
        assert live.recommend(user_id=user_id, category=Category.MYSTERY) == expected


def test_an_index_rebuilt_from_the_store_answers_like_the_live_one(start_live):
    live = start_live()
    live.publish(
        BOOK_UPSERTED,
        envelope(book_upserted(40, "New Mystery", pb.MYSTERY)),
        envelope(book_upserted(2, "The Big Sleep", pb.MYSTERY, active=False)),
        envelope(book_upserted(8, "Atomic Habits", pb.BIOGRAPHY)),
    )
    live.publish(
        PURCHASE_COMPLETED,
        envelope(purchase_completed(800, 1, (40, 0), (3, 0, 2), (5, 1))),
        envelope(purchase_completed(801, 7, (40, 0), (1, 0))),
        envelope(purchase_completed(802, 3, (8, 5, 4))),
    )
    wait_until(lambda: live.consumer.results["applied"] == 6, what="six events applied")

    with Store(live.db_path) as store:
        rebuilt = RecommendationIndex.build(store.books(), store.purchases())
    for user_id in (0, 1, 3, 4, 7):
        for category in Category:
            expected = [
                (r.book.id, r.book.title, r.reason.name)
                for r in rebuilt.recommend(user_id=user_id, category=category, max_results=10)
            ]
            assert live.recommend(user_id=user_id, category=category) == expected


def test_the_consumer_reconnects_after_the_broker_goes_away(start_live, caplog):
    caplog.set_level(logging.INFO, logger="recommender.events")
    thread = ServerThread()
    cutter = BrokerCutter(URL(AMQP_URL))
    thread.run(cutter.start())
    try:
        via_cutter = str(URL(AMQP_URL).with_host("127.0.0.1").with_port(cutter.port))
        live = start_live(amqp_url=via_cutter)
        live.publish(BOOK_UPSERTED, envelope(book_upserted(50, "Before", pb.BIOGRAPHY)))
        wait_until(lambda: live.ids(category=pb.BIOGRAPHY) == [50], what="the first book")

        cutter.refusing = True
        thread.run(cutter.cut())
        wait_until(lambda: not live.consumer.consuming, what="the consumer to notice")
        # Published while the consumer is away: the durable queue keeps it.
        live.publish(BOOK_UPSERTED, envelope(book_upserted(51, "During", pb.BIOGRAPHY)))
        time.sleep(0.5)  # a few refused reconnection attempts
        cutter.refusing = False

        wait_until(lambda: live.ids(category=pb.BIOGRAPHY) == [50, 51], what="the second book")
        consuming = [r for r in caplog.records if r.getMessage().startswith("events: consuming")]
        assert len(consuming) == 2, "connected, then connected again"
    finally:
        thread.run(cutter.close())
        thread.close()


def test_the_consumer_moves_to_the_next_node_when_its_node_is_lost(start_live, caplog):
    """AMQP_URL lists the nodes of a cluster; here two doors to one broker."""
    caplog.set_level(logging.INFO, logger="recommender.events")
    thread = ServerThread()
    first, second = BrokerCutter(URL(AMQP_URL)), BrokerCutter(URL(AMQP_URL))
    for cutter in (first, second):
        thread.run(cutter.start())
    try:
        nodes = ";".join(
            str(URL(AMQP_URL).with_host("127.0.0.1").with_port(c.port)) for c in (first, second)
        )
        live = start_live(amqp_url=nodes)
        live.publish(BOOK_UPSERTED, envelope(book_upserted(60, "Before", pb.BIOGRAPHY)))
        wait_until(lambda: live.ids(category=pb.BIOGRAPHY) == [60], what="the first book")
        assert f":{first.port}/" in caplog.text

        # The first node is gone for good: the consumer must not wait for it.
        first.refusing = True
        thread.run(first.cut())
        live.publish(BOOK_UPSERTED, envelope(book_upserted(61, "After", pb.BIOGRAPHY)))
        wait_until(lambda: live.ids(category=pb.BIOGRAPHY) == [60, 61], what="the second book")
        consuming = [r for r in caplog.records if r.getMessage().startswith("events: consuming")]
        assert f":{second.port}/" in consuming[-1].getMessage()
    finally:
        for cutter in (first, second):
            thread.run(cutter.close())
        thread.close()


# --- python -m recommender ------------------------------------------------


def _process(tmp_path: Path, **env: str) -> tuple[RecommenderProcess, str]:
    process = RecommenderProcess(
        {
            "RECOMMENDER_LISTEN": "127.0.0.1:0",
            "RECOMMENDER_DB": str(tmp_path / "recommender.sqlite3"),
            "RECOMMENDER_INSTANCE": INSTANCE,
            **env,
        }
    )
    port = process.wait_for(r"serving on 127\.0\.0\.1:(\d+)").group(1)
    process.wait_for(r" ready$")
    return process, f"127.0.0.1:{port}"


def _stop(process: RecommenderProcess) -> None:
    process.proc.send_signal(signal.SIGTERM)
    try:
        assert process.proc.wait(10) == 0
    finally:
        process.stop()


def test_the_service_learns_from_its_own_queue_and_stops_cleanly(tmp_path, topology):
    process, target = _process(
        tmp_path, EVENTS_NAMESPACE=topology.namespace, EVENTS_DELIVERY_LIMIT="3"
    )
    try:
        # No relay declared the history stream in this namespace: the replica
        # says so once, before it is ready, with the way to send it the history.
        said = [line for line in process.log if "no history stream" in line]
        assert len(said) == 1
        assert f"replay_events --consumer recommender.{INSTANCE}`" in said[0]
        process.wait_for(rf"events: consuming {topology.namespace}\.recommender\.{INSTANCE} ")

        async def publish() -> None:
            async with await aio_pika.connect(AMQP_URL, timeout=5) as connection:
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                exchange, _ = await declare_exchanges(channel, topology)
                for routing_key, payload in (
                    (BOOK_UPSERTED, book_upserted(9001, "Proof of Life", pb.ROMANCE)),
                    (PURCHASE_COMPLETED, purchase_completed(9001, 1, (9001, pb.ROMANCE, 500))),
                ):
                    await exchange.publish(
                        aio_pika.Message(envelope(payload), delivery_mode=2, message_id="m"),
                        routing_key=routing_key,
                        mandatory=True,
                    )

        asyncio.run(publish())
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.RecommendationsStub(channel)

            def top_romance() -> int:
                request = pb.RecommendationRequest(category=pb.ROMANCE, max_results=1)
                return stub.Recommend(request, timeout=5).recommendations[0].id

            wait_until(lambda: top_romance() == 9001, what="the new best seller on top")
    except BaseException:
        process.stop()
        raise
    _stop(process)
    process.wait_for(f"events: stopped consuming {topology.namespace}")
    process.wait_for(" stopped$")


def test_with_the_broker_unreachable_a_replica_that_caught_up_still_serves(tmp_path):
    """One that never did waits for the broker instead (test_history.py)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    with Store(tmp_path / "recommender.sqlite3") as store:
        store.record_caught_up(Topology(namespace=namespace).history.name)
    process, target = _process(
        tmp_path,
        AMQP_URL=f"amqp://guest:secret@127.0.0.1:{port}/",
        EVENTS_NAMESPACE=namespace,
    )
    try:
        # It keeps trying, with backoff, and does not print the password.
        first = process.wait_for(r"events: cannot consume .* retrying in ([\d.]+)s")
        second = process.wait_for(r"events: cannot consume .* retrying in ([\d.]+)s")
        assert float(second.group(1)) > float(first.group(1))
        assert "secret" not in "".join(process.log)
        with grpc.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            reply = pb_grpc.RecommendationsStub(channel).Recommend(
                pb.RecommendationRequest(category=pb.HISTORY, max_results=3), timeout=5
            )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert len(reply.recommendations) == 3
    except BaseException:
        process.stop()
        raise
    _stop(process)


def test_a_queue_deleted_under_the_consumer_is_declared_again_and_learning_goes_on(start_live):
    """The broker ends the consumer of a deleted queue (basic.cancel) and
    leaves the connection open: the replica must not stay connected and deaf."""
    live = start_live()
    live.publish(BOOK_UPSERTED, envelope(book_upserted(30, "Before", pb.FANTASY)))
    wait_until(lambda: live.ids(category=pb.FANTASY) == [30], what="the first book")
    name = live.topology.recommender_queue(INSTANCE).name

    async def delete_queue() -> None:
        channel = await live.publisher.channel()
        await channel.queue_delete(name)
        await channel.close()

    live.thread.run(delete_queue())
    wait_until(
        lambda: live.thread.run(queue_exists(live.publisher, name)), what="the queue declared again"
    )
    wait_until(lambda: live.consumer.consuming, what="consuming again")
    live.publish(BOOK_UPSERTED, envelope(book_upserted(31, "After", pb.FANTASY)))
    wait_until(lambda: live.ids(category=pb.FANTASY) == [30, 31], what="the second book")
