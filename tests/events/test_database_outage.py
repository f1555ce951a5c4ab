"""A dependency (the database, the mail server) down under the worker: a
queue's batches wait, unsettled, and are applied when it is back; an outage
spends none of the events' deliveries, and other queues go on.

The step's own logic, with the worker's event loop and the broker's messages
faked; tests/events/test_database_outage_worker.py cuts a real worker off a
real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import pytest
from kombu import Message as KombuMessage

from events.celery_consumer import EventConsumers, QueueDriver, delivery_of
from events.consuming import Action, EventQueue, Properties, Result
from events.contracts import PROMOTION_APPLIED, Event
from events.topology import Topology
from tests.events.test_consuming import CONSUMER, LIMIT, Database, Ledger, delivery


class Channel:
    """The broker's side of one channel: a multiple ack settles every
    delivery up to its own."""

    def __init__(self) -> None:
        self.delivered: list[Message] = []
        # What was done, in order: ("park", n), ("requeue", n), ("ack", n).
        self.log: list[tuple[str, int | str]] = []


CHANNEL = Channel()


class Message:
    """A delivered message as the step sees it (kombu's Message)."""

    def __init__(self, order_id: int, *, deliveries: int = 0, channel: Channel = CHANNEL) -> None:
        d = delivery(order_id, deliveries=deliveries)
        self.channel = channel
        self.order_id = order_id
        self.body = d.body
        self.headers = d.headers or {}
        self.properties: dict = {"message_id": f"m-{order_id}"}
        self.content_type = self.content_encoding = None
        self.acknowledged = False
        self.acked = self.requeued = False
        channel.delivered.append(self)

    def ack(self, multiple: bool = False) -> None:
        self.channel.log.append(("ack", self.order_id))
        delivered = self.channel.delivered
        for message in delivered[: delivered.index(self) + 1] if multiple else [self]:
            if not message.acknowledged:
                message.acked = message.acknowledged = True
        self.acked = self.acknowledged = True

    def requeue(self) -> None:
        assert not self.acknowledged, "settled twice"
        self.channel.log.append(("requeue", self.order_id))
        self.requeued = self.acknowledged = True


class FakeHub:
    """The worker's event loop, as far as the step uses it: timers fired by hand."""

    class Timer:
        def __init__(self, callback) -> None:
            self.callback = callback
            self.cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self) -> None:
        self.timers: list[FakeHub.Timer] = []
        self.delays: list[float] = []

    def call_later(self, delay: float, callback) -> Timer:
        self.delays.append(delay)
        timer = self.Timer(callback)
        self.timers.append(timer)
        return timer

    def fire(self) -> None:
        for timer in [t for t in self.timers if not t.cancelled]:
            timer.cancelled = True
            timer.callback()


class Parking:
    """The step's own publisher to the dead-letter exchange."""

    def __init__(self, channel: Channel = CHANNEL) -> None:
        self.channel = channel
        self.parked: list[tuple[bytes, str, Properties]] = []
        self.fails = False

    def __call__(self, body: bytes, routing_key: str, parked: Properties) -> None:
        if self.fails:
            raise ConnectionError("parking connection lost")
        self.parked.append((body, routing_key, parked))
        self.channel.log.append(("park", parked["message_id"]))


def queue_driver(consumers: EventConsumers, consumer: str = CONSUMER) -> QueueDriver:
    return consumers.queue(consumer, hub=FakeHub(), park=Parking())


def handle(driver: QueueDriver, *messages: Message) -> None:
    # The fake stands in for kombu's Message: it has what the driver reads.
    fakes = cast(tuple[KombuMessage, ...], messages)
    driver.run_batch([(m, delivery_of(m)) for m in fakes])


@pytest.fixture
def step():
    CHANNEL.delivered.clear()
    CHANNEL.log.clear()
    ledger = Ledger(poison={666})
    database = Database(ledger)
    consumers = EventConsumers(
        topology=Topology(namespace="outage-test", delivery_limit=LIMIT),
        handlers={CONSUMER: {PROMOTION_APPLIED: "handler"}},
        apply_batch=database.apply_batch,
        dependencies_up=database.is_up,
        outage_retry_waits=(0.5, 1.5),
    )
    driver = queue_driver(consumers)
    return driver, database, ledger, lambda *messages: handle(driver, *messages)


def settled(*messages: Message) -> list[str]:
    return ["acked" if m.acked else "requeued" if m.requeued else "held" for m in messages]


def test_while_the_database_is_down_batches_are_held_then_applied_in_order(step):
    driver, database, ledger, handle = step
    hub = driver.hub
    # The first is on its last delivery: a failure of its own would park it.
    first = [Message(1, deliveries=LIMIT - 1), Message(2)]
    later = [Message(3)]

    database.up = False
    handle(*first)
    assert settled(*first) == ["held", "held"]
    calls = len(ledger.calls)
    handle(*later)  # the outage is known: not even tried
    assert settled(*later) == ["held"]
    assert len(ledger.calls) == calls

    hub.fire()  # still down: wait longer, up to the last wait
    hub.fire()
    hub.fire()
    assert hub.delays == [0.5, 1.0, 1.5, 1.5]
    assert settled(*first, *later) == ["held"] * 3

    database.up = True
    hub.fire()
    assert ledger.applied == [1, 2, 3]
    assert settled(*first, *later) == ["acked"] * 3
    assert driver.core.held == []
    handle(Message(4))  # and the next batch goes straight through
    assert ledger.applied == [1, 2, 3, 4]


def test_a_failure_with_the_database_up_is_the_events_own(step):
    driver, _, ledger, handle = step
    poison, fine = Message(666), Message(5)
    handle(poison, fine)
    assert settled(poison, fine) == ["requeued", "acked"]
    assert ledger.applied == [5]
    assert driver.core.held == []
    assert driver.hub.delays == []


def test_down_again_while_retrying_the_held_batches_keep_their_order(step):
    driver, database, ledger, handle = step
    batches = [[Message(10)], [Message(11)], [Message(12)]]
    database.up = False
    for batch in batches:
        handle(*batch)

    # Back for the first held batch only.
    database.up = True
    real_apply = driver.core.apply_batch

    def fails_after_one(*args):
        applied = real_apply(*args)
        database.up = False
        return applied

    driver.core.apply_batch = fails_after_one
    driver.hub.fire()
    assert ledger.applied == [10]
    assert [settled(*b) for b in batches] == [["acked"], ["held"], ["held"]]

    driver.core.apply_batch = real_apply
    database.up = True
    driver.hub.fire()
    assert ledger.applied == [10, 11, 12]
    assert [settled(*b) for b in batches] == [["acked"]] * 3


def test_held_messages_are_dropped_when_the_channel_closes(step):
    """Stopping or reconnecting: the broker delivers them again."""
    driver, database, ledger, handle = step
    database.up = False
    held = Message(20)
    handle(held)
    driver.discard()
    assert driver.core.held == []
    database.up = True
    driver.hub.fire()
    assert ledger.applied == []
    assert settled(held) == ["held"]


def test_only_the_queue_whose_dependency_is_down_waits():
    """The mail server down: e-mails wait, the ledgers go on."""
    ledger = Ledger()
    mail_server = {"up": False}

    def apply_batch(consumer: str, events: Sequence[Event], handler: object) -> set[str]:
        if consumer == "worker.emails" and not mail_server["up"]:
            raise ConnectionRefusedError("SMTP: connection refused")
        return ledger(consumer, events, handler)

    consumers = EventConsumers(
        topology=Topology(namespace="outage-test", delivery_limit=LIMIT),
        handlers={name: {PROMOTION_APPLIED: "handler"} for name in ("worker.emails", CONSUMER)},
        apply_batch=apply_batch,
        dependencies_up=lambda consumer: consumer != "worker.emails" or mail_server["up"],
    )
    emails, promotions = queue_driver(consumers, "worker.emails"), queue_driver(consumers)
    # Each queue has a channel of its own.
    email, promotion = Message(30, channel=Channel()), Message(31, channel=Channel())
    handle(emails, email)
    handle(promotions, promotion)
    assert settled(email, promotion) == ["held", "acked"]
    assert (len(emails.core.held), promotions.core.held) == (1, [])

    mail_server["up"] = True
    emails.hub.fire()
    assert settled(email) == ["acked"]
    assert ledger.applied == [31, 30]


def test_with_a_dependency_down_no_event_is_tried_alone_or_parked():
    """One failure and one question: the events wait as they are, even one on its
    last delivery, and the database is not asked again for every event."""
    calls: list[int] = []
    asked: list[bool] = []

    def apply_batch(consumer: str, events: Sequence[Event], handler: object) -> set[str]:
        calls.append(len(events))
        raise ConnectionError("connection refused")

    def up() -> bool:
        asked.append(True)
        return False

    queue = EventQueue(
        consumer=CONSUMER,
        queue="q",
        handlers={PROMOTION_APPLIED: "handler"},
        apply_batch=apply_batch,
        delivery_limit=LIMIT,
        dependencies_up=up,
    )
    decisions = queue.decide([delivery(1, deliveries=LIMIT - 1), delivery(2), delivery(3)])
    assert [d.result for d in decisions] == [Result.UNAVAILABLE] * 3
    assert {d.action for d in decisions} == {Action.REQUEUE}
    assert calls == [3]  # the batch once, never event by event
    assert asked == [True]


def test_a_broken_check_counts_as_up_so_nothing_waits_on_a_bug():
    CHANNEL.delivered.clear()
    ledger = Ledger(poison={666})

    def broken_check(consumer: str) -> bool:
        raise RuntimeError("bug in the check")

    consumers = EventConsumers(
        topology=Topology(namespace="outage-test", delivery_limit=LIMIT),
        handlers={CONSUMER: {PROMOTION_APPLIED: "handler"}},
        apply_batch=ledger,
        dependencies_up=broken_check,
    )
    driver = queue_driver(consumers)
    poison, fine = Message(666), Message(7)
    handle(driver, poison, fine)
    assert settled(poison, fine) == ["requeued", "acked"]
    assert driver.core.held == []


def test_a_batch_is_settled_parks_first_then_requeues_then_one_multiple_ack(step):
    """Parking goes through the step's own publisher (its own connection: the
    wait for its confirm hands over no delivery), and the batch's messages are
    settled only after the whole batch is decided."""
    driver, _, _, handle = step
    to_park = Message(666, deliveries=LIMIT - 1)  # fails on its last delivery
    to_requeue = Message(666)  # fails with deliveries left
    first, last = Message(1), Message(2)
    handle(first, to_park, to_requeue, last)
    assert CHANNEL.log == [("park", "m-666"), ("requeue", 666), ("ack", 2)]
    assert settled(first, to_park, to_requeue, last) == ["acked", "acked", "requeued", "acked"]
    [(body, routing_key, parked)] = driver.park.parked
    assert (body, routing_key) == (to_park.body, "outage-test.worker.promotions")
    assert parked["headers"]["x-parked-reason"] == "failed: ValueError: poison order"


def test_a_park_that_fails_is_requeued_instead(step):
    driver, _, _, handle = step
    driver.park.fails = True
    to_park, fine = Message(666, deliveries=LIMIT - 1), Message(3)
    handle(to_park, fine)
    assert settled(to_park, fine) == ["requeued", "acked"]


def test_a_batch_is_handled_when_full_or_when_its_wait_is_over(step):
    driver, _, ledger, _ = step
    driver.core.batch_size = 3
    for n in (1, 2, 3, 4):
        driver.on_message(Message(n))
    assert ledger.applied == [1, 2, 3]
    driver.hub.fire()
    assert ledger.applied == [1, 2, 3, 4]


def test_discarded_messages_are_never_handled(step):
    """On a closing channel: the broker redelivers them, so handling them would
    only commit work whose ack cannot reach it."""
    driver, _, ledger, _ = step
    driver.core.batch_size = 32
    driver.on_message(Message(1))
    driver.discard()
    driver.hub.fire()
    assert ledger.applied == []
