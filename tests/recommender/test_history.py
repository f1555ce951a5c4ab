"""A recommender replica added to a running shop catches up on its history by itself.

Real ``python -m recommender`` processes and the real broker, in a namespace
of the test's own: the history stream declared as the relay declares it,
events published to the exchange as the relay publishes them.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from random import Random

import aio_pika
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from yarl import URL

from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from events.amqp import declare_exchanges
from events.contracts import BOOK_UPSERTED, PURCHASE_COMPLETED, book_category, wrap
from events.topology import Topology
from recommender.engine import Category
from tests.events.broker import AMQP_URL, delete_topology, wait_until
from tests.events.declare import declare_history_stream
from tests.grpc_server import ServerThread
from tests.payloads import book_payload, purchase_payload
from tests.recommender.process import RecommenderProcess
from tests.recommender.test_events_consumer import BrokerCutter

REPLICAS = ("a", "b", "c")
BOOK_IDS = range(2000, 2040)


@pytest.fixture
def topology() -> Iterator[Topology]:
    topology = Topology(namespace=f"test-{uuid.uuid4().hex[:8]}", delivery_limit=3)
    yield topology
    delete_topology(topology, instances=REPLICAS)


def publish(topology: Topology, routing_key: str, payloads: list) -> list[str]:
    """Persistent, mandatory, confirmed, as the relay publishes; returns the event ids."""
    envelopes = [wrap(p, correlation_id="history", producer="tests") for p in payloads]

    async def run() -> None:
        async with await aio_pika.connect(AMQP_URL, timeout=5) as connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange, _ = await declare_exchanges(channel, topology)
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            e.SerializeToString(),
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=e.event_id,
                            type=routing_key,
                        ),
                        routing_key=routing_key,
                        mandatory=True,
                        timeout=30,
                    )
                    for e in envelopes
                )
            )

    asyncio.run(run())
    return [e.event_id for e in envelopes]


def books() -> list:
    return [
        book_payload(book_id=book_id, title=f"Book {book_id}", category=book_id % 7, active=True)
        for book_id in BOOK_IDS
    ]


def orders(first: int, count: int) -> list:
    """``count`` orders of one to three books, by 40 customers."""
    rng = Random(first)
    return [
        purchase_payload(
            order_id=order_id,
            user_id=rng.randrange(1, 41),
            lines=[
                (book_id, rng.randint(1, 2), "9.99", book_id % 7)
                for book_id in rng.sample(BOOK_IDS, rng.randint(1, 3))
            ],
        )
        for order_id in range(first, first + count)
    ]


class Replica:
    def __init__(self, process: RecommenderProcess, target: str, db: Path) -> None:
        self.process = process
        self.db = db
        self.channel = grpc.insecure_channel(target)

    def answers(self) -> dict[tuple[int, int], list[tuple[int, str]]]:
        """Every customer's recommendations in every category."""
        stub = pb_grpc.RecommendationsStub(self.channel)
        found: dict[tuple[int, int], list[tuple[int, str]]] = {}
        for user_id in range(41):
            for category in Category:
                reply = stub.Recommend(
                    pb.RecommendationRequest(
                        user_id=user_id, category=book_category(category), max_results=10
                    ),
                    timeout=5,
                )
                found[user_id, category] = [
                    (r.id, pb.RecommendationReason.Name(r.reason)) for r in reply.recommendations
                ]
        return found

    def rows(self, sql: str) -> list[tuple]:
        with closing(sqlite3.connect(self.db)) as db:
            return db.execute(sql).fetchall()

    def applied(self) -> set[str]:
        return {event_id for (event_id,) in self.rows("SELECT event_id FROM inbox")}

    def health(self) -> int:
        stub = health_pb2_grpc.HealthStub(self.channel)
        # types-grpcio-health-checking's HealthStub declares none of its methods.
        return stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status  # type: ignore[attr-defined]


@pytest.fixture
def start_replica(tmp_path, topology) -> Iterator:
    """``start(name, ready=True) -> Replica``: `python -m recommender` named ``name``,
    with a store of its own, consuming this test's namespace."""
    started: list[Replica] = []

    def start(name: str, *, ready: bool = True, **env: str) -> Replica:
        db = tmp_path / f"{name}.sqlite3"
        process = RecommenderProcess(
            {
                "RECOMMENDER_LISTEN": "127.0.0.1:0",
                "RECOMMENDER_DB": str(db),
                "RECOMMENDER_INSTANCE": name,
                "EVENTS_NAMESPACE": topology.namespace,
                "EVENTS_DELIVERY_LIMIT": str(topology.delivery_limit),
                **env,
            }
        )
        port = process.wait_for(r"serving on 127\.0\.0\.1:(\d+)").group(1)
        replica = Replica(process, f"127.0.0.1:{port}", db)
        started.append(replica)
        if ready:
            # The bound on a catch-up: ready within 30 s of its start.
            process.wait_for(r" ready$", timeout=30)
        return replica

    yield start
    for replica in started:
        replica.channel.close()
        replica.process.stop()


def stop(replica: Replica) -> None:
    replica.process.proc.send_signal(signal.SIGTERM)
    assert replica.process.proc.wait(15) == 0


def caught_up(replica: Replica, topology: Topology) -> dict[str, int]:
    """What its catch-up reports (logged before "ready"): ``{"applied": 12, ...}``."""
    found = re.search(
        rf"events: caught up on {re.escape(topology.history.name)} in [\d.]+s: (.*)$",
        replica.process.output(),
        re.MULTILINE,
    )
    assert found, replica.process.output()
    return {result: int(n) for n, result in re.findall(r"(\d+) (\w+)", found.group(1))}


def test_a_third_replica_catches_up_and_answers_like_the_first_two(topology, start_replica):
    declare_history_stream(topology)
    a, b = start_replica("a"), start_replica("b")
    history = publish(topology, BOOK_UPSERTED, books())
    history += publish(topology, PURCHASE_COMPLETED, orders(5000, 300))
    for replica in (a, b):
        wait_until(lambda r=replica: r.applied() == set(history), what="a and b learn it all")

    # Sales go on while the third one starts, binds its queue and catches up:
    # each reaches it once, from the history or from its queue.
    during: list[str] = []
    started = threading.Event()

    def sell() -> None:
        for first in range(6000, 9000, 10):
            during.extend(publish(topology, PURCHASE_COMPLETED, orders(first, 10)))
            if started.is_set():
                return

    sales = threading.Thread(target=sell)
    sales.start()
    try:
        c = start_replica("c")
    finally:
        started.set()
        sales.join()
    everything = set(history) | set(during)

    from_history = caught_up(c, topology)
    # All that was published before it started came from the history.
    assert from_history["applied"] >= len(history)
    for replica in (a, b, c):
        wait_until(lambda r=replica: r.applied() == everything, what="every replica has it all")

    def from_queue() -> int:
        return len(re.findall(r"consumer=recommender .* result=applied", c.process.output()))

    # Each event applied once: by the history or by the queue, never both.
    wait_until(
        lambda: from_history["applied"] + from_queue() == len(everything),
        what="the applied events counted once each",
    )
    assert c.rows("SELECT count(*) FROM inbox") == [(len(everything),)]
    purchases = "SELECT order_id, book_id, user_id, quantity FROM purchases ORDER BY 1, 2"
    assert c.rows(purchases) == a.rows(purchases)
    assert a.answers() == b.answers() == c.answers()
    assert any(
        reason == "BOUGHT_TOGETHER" for answer in c.answers().values() for _, reason in answer
    )


def test_a_replica_that_caught_up_once_never_reads_the_history_again(topology, start_replica):
    declare_history_stream(topology)
    before = publish(topology, BOOK_UPSERTED, books())
    before += publish(topology, PURCHASE_COMPLETED, orders(5000, 50))
    a = start_replica("a")
    assert caught_up(a, topology) == {"applied": len(before)}
    stop(a)
    # Sold while it was down: its queue keeps it.
    while_down = publish(topology, PURCHASE_COMPLETED, orders(7000, 5))

    again = start_replica("a")
    assert "catching up" not in again.process.output()
    wait_until(lambda: again.applied() == set(before + while_down), what="the queue's sales")
    # Logged just after each commit.
    wait_until(
        lambda: again.process.output().count("result=applied") == len(while_down),
        what="the sales applied from its queue",
    )


def test_without_a_history_stream_a_new_replica_says_so_once_and_serves(topology, start_replica):
    """No relay has published yet (or an older one, which declared no stream):
    the replica says so once, with how to send it past events, and serves."""
    a = start_replica("a")
    said = [line for line in a.process.log if "no history stream" in line]
    assert len(said) == 1
    assert "replay_events --consumer recommender.a`" in said[0]
    assert a.health() == health_pb2.HealthCheckResponse.SERVING
    sold = publish(topology, PURCHASE_COMPLETED, orders(5000, 3))
    wait_until(lambda: a.applied() == set(sold), what="sales from its queue")


def test_a_new_replica_does_not_serve_before_it_has_read_the_history(topology, start_replica):
    """With the broker out of reach it cannot: NOT_SERVING, and calls are
    refused as retryable, until the broker is back and it has."""
    declare_history_stream(topology)
    sold = publish(topology, PURCHASE_COMPLETED, orders(5000, 20))
    thread = ServerThread()
    cutter = BrokerCutter(URL(AMQP_URL))
    thread.run(cutter.start())
    cutter.refusing = True
    try:
        a = start_replica(
            "a",
            ready=False,
            AMQP_URL=str(URL(AMQP_URL).with_host("127.0.0.1").with_port(cutter.port)),
        )
        a.process.wait_for(r"events: cannot consume .* retrying")
        assert a.health() == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as refused:
            pb_grpc.RecommendationsStub(a.channel).Recommend(
                pb.RecommendationRequest(user_id=1, category=pb.MYSTERY), timeout=5
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "catching up on the event history" in refused.value.details()

        cutter.refusing = False
        a.process.wait_for(r" ready$", timeout=60)
        assert a.health() == health_pb2.HealthCheckResponse.SERVING
        assert a.applied() == set(sold)
    finally:
        thread.run(cutter.close())
        thread.close()
