"""Purchases published at a steady rate, for a recommender to learn while it
is measured: PurchaseCompleted envelopes, as the relay publishes them, to the
topic exchange of the bench's own namespace.

A thread with its own event loop, from ``start()`` to ``close()``; ``on()``
and ``off()`` bracket the rounds that should see sales. Each sale is a past
purchase's book (best sellers sell more) bought by a random customer, in an
order of its own.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Sequence
from decimal import Decimal

import aio_pika

from bench.pg import AMQP_URL
from bookstore.events.v1 import events_pb2
from events.contracts import PURCHASE_COMPLETED, wrap
from events.topology import Topology

# After every order of the generated history.
FIRST_ORDER = 2**40


class Sales:
    def __init__(
        self, *, namespace: str, rate: float, books: Sequence[int], users: int, seed: int = 7
    ) -> None:
        self.rate = rate
        self.published = 0
        self._exchange_name = Topology(namespace=namespace).exchange
        self._books, self._users = books, users
        self._rng = random.Random(seed)
        self._selling = threading.Event()
        self._stopping = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bench-sales", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        self._selling.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def on(self) -> None:
        self._check()
        self._selling.set()

    def off(self) -> None:
        self._selling.clear()
        self._check()

    def _check(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"publishing sales failed: {self._failure!r}")

    def _sale(self) -> events_pb2.PurchaseCompleted:
        rng = self._rng
        # One line per book, as an order has (the contract refuses a book twice).
        books = dict.fromkeys(rng.choice(self._books) for _ in range(rng.randint(1, 2)))
        lines = [
            events_pb2.PurchaseLine(
                book_id=book_id, quantity=1, unit_price="9.99", line_total="9.99"
            )
            for book_id in books
        ]
        total = f"{Decimal('9.99') * len(lines):.2f}"
        payload = events_pb2.PurchaseCompleted(
            order_id=FIRST_ORDER + self.published,
            user_id=rng.randint(1, self._users),
            currency="USD",
            lines=lines,
            subtotal=total,
            discount="0.00",
            total=total,
        )
        return payload

    def _run(self) -> None:
        try:
            asyncio.run(self._publish())
        except BaseException as exc:  # reported by the next on() or off()
            self._failure = exc

    async def _publish(self) -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(self._exchange_name)
            while not self._stopping.is_set():
                await asyncio.to_thread(self._selling.wait)
                started, sent = time.perf_counter(), 0
                while self._selling.is_set() and not self._stopping.is_set():
                    envelope = wrap(self._sale(), correlation_id="bench", producer="bench")
                    await exchange.publish(
                        aio_pika.Message(
                            body=envelope.SerializeToString(),
                            message_id=envelope.event_id,
                            content_type="application/x-protobuf",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            type=PURCHASE_COMPLETED,
                        ),
                        routing_key=PURCHASE_COMPLETED,
                    )
                    self.published += 1
                    sent += 1
                    # Paced from the start of the round, so a slow publish is caught up.
                    await asyncio.sleep(max(0.0, started + sent / self.rate - time.perf_counter()))
