"""A dependency (the database, the mail server) down under the worker: a
queue's batches wait, unsettled, and are applied when it is back; an outage
spends none of the events' deliveries, and other queues go on.

The step's own logic, with the worker's event loop and the broker's messages
faked; tests/events/test_database_outage_worker.py cuts a real worker off a
real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import pytest

from events.celery_consumer import Batch, EventConsumers
from events.contracts import PROMOTION_APPLIED, Event
from events.dispatch import UNAVAILABLE, Action, dispatch_batch
from events.topology import Topology
from tests.events.test_dispatch_batch import CONSUMER, LIMIT, FakeHub, Ledger, delivery


class Database:
    """Up or down; while down, every batch applied through it fails."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.up = True
        self.checks = 0

    def apply_batch(self, consumer: str, events: Sequence[Event], handler: object) -> set[str]:
        if not self.up:
            raise ConnectionError("connection refused")
        return self.ledger(consumer, events, handler)

    def is_up(self, consumer: str) -> bool:
        self.checks += 1
        return self.up


class Channel:
    """The broker's side of one channel: a multiple ack settles every
    delivery up to its own."""

    def __init__(self) -> None:
        self.delivered: list[Message] = []


CHANNEL = Channel()


class Message:
    """A delivered message as the step sees it (kombu's Message)."""

    def __init__(self, order_id: int, *, deliveries: int = 0, channel: Channel = CHANNEL) -> None:
        d = delivery(order_id, deliveries=deliveries)
        self.channel = channel
        self.order_id = order_id
        self.body = d.body
        self.headers = d.headers or {}
        self.properties: dict = {}
        self.acknowledged = False
        self.acked = self.requeued = False
        channel.delivered.append(self)

    def ack(self, multiple: bool = False) -> None:
        delivered = self.channel.delivered
        for message in delivered[: delivered.index(self) + 1] if multiple else [self]:
            if not message.acknowledged:
                message.acked = message.acknowledged = True
        self.acked = self.acknowledged = True

    def requeue(self) -> None:
        self.requeued = self.acknowledged = True


class TimedHub(FakeHub):
    def __init__(self) -> None:
        super().__init__()
        self.delays: list[float] = []

    def call_later(self, delay: float, callback):
        self.delays.append(delay)
        return super().call_later(delay, callback)


@pytest.fixture
def step():
    CHANNEL.delivered.clear()
    ledger = Ledger(poison={666})
    database = Database(ledger)
    consumers = EventConsumers(
        topology=Topology(namespace="outage-test", delivery_limit=LIMIT),
        routes={CONSUMER: {PROMOTION_APPLIED: "handler"}},
        apply_batch=database.apply_batch,
        dependencies_up=database.is_up,
        outage_retry_waits=(0.5, 1.5),
    )
    consumers.hub = TimedHub()
    spec = consumers.topology.queue(CONSUMER)

    def handle(*messages: Message) -> None:
        consumers.handle(CONSUMER, spec, {PROMOTION_APPLIED: "handler"}, list(messages))

    return consumers, database, ledger, handle


def settled(*messages: Message) -> list[str]:
    return ["acked" if m.acked else "requeued" if m.requeued else "held" for m in messages]


def test_while_the_database_is_down_batches_are_held_then_applied_in_order(step):
    consumers, database, ledger, handle = step
    hub = consumers.hub
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
    assert consumers.outages == {}
    handle(Message(4))  # and the next batch goes straight through
    assert ledger.applied == [1, 2, 3, 4]


def test_a_failure_with_the_database_up_is_the_events_own(step):
    consumers, _, ledger, handle = step
    poison, fine = Message(666), Message(5)
    handle(poison, fine)
    assert settled(poison, fine) == ["requeued", "acked"]
    assert ledger.applied == [5]
    assert consumers.outages == {}
    assert consumers.hub.delays == []


def test_down_again_while_retrying_the_held_batches_keep_their_order(step):
    consumers, database, ledger, handle = step
    batches = [[Message(10)], [Message(11)], [Message(12)]]
    database.up = False
    for batch in batches:
        handle(*batch)

    # Back for the first held batch only.
    database.up = True
    real_apply = consumers.apply_batch

    def fails_after_one(*args):
        applied = real_apply(*args)
        database.up = False
        return applied

    consumers.apply_batch = fails_after_one
    consumers.hub.fire()
    assert ledger.applied == [10]
    assert [settled(*b) for b in batches] == [["acked"], ["held"], ["held"]]

    consumers.apply_batch = real_apply
    database.up = True
    consumers.hub.fire()
    assert ledger.applied == [10, 11, 12]


def test_held_messages_are_dropped_when_the_channel_closes(step):
    """Stopping or reconnecting: the broker delivers them again."""
    consumers, database, ledger, handle = step
    database.up = False
    held = Message(20)
    handle(held)
    consumers.discard_pending()
    assert consumers.outages == {}
    database.up = True
    consumers.hub.fire()
    assert ledger.applied == []
    assert settled(held) == ["held"]


def test_only_the_queue_whose_dependency_is_down_waits():
    """The mail server down: e-mails wait, the ledgers go on."""
    CHANNEL.delivered.clear()
    ledger = Ledger()
    mail_server = {"up": False}

    def apply_batch(consumer: str, events: Sequence[Event], handler: object) -> set[str]:
        if consumer == "worker.emails" and not mail_server["up"]:
            raise ConnectionRefusedError("SMTP: connection refused")
        return ledger(consumer, events, handler)

    routes = {name: {PROMOTION_APPLIED: "handler"} for name in ("worker.emails", CONSUMER)}
    consumers = EventConsumers(
        topology=Topology(namespace="outage-test", delivery_limit=LIMIT),
        routes=routes,
        apply_batch=apply_batch,
        dependencies_up=lambda consumer: consumer != "worker.emails" or mail_server["up"],
    )
    consumers.hub = TimedHub()
    topology = consumers.topology
    # Each queue has a channel of its own.
    email, promotion = Message(30, channel=Channel()), Message(31, channel=Channel())
    consumers.handle(
        "worker.emails", topology.queue("worker.emails"), routes["worker.emails"], [email]
    )
    consumers.handle(CONSUMER, topology.queue(CONSUMER), routes[CONSUMER], [promotion])
    assert settled(email, promotion) == ["held", "acked"]
    assert list(consumers.outages) == ["worker.emails"]

    mail_server["up"] = True
    consumers.hub.fire()
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

    outcomes = dispatch_batch(
        consumer=CONSUMER,
        deliveries=[delivery(1, deliveries=LIMIT - 1), delivery(2), delivery(3)],
        handlers={PROMOTION_APPLIED: "handler"},
        apply_batch=apply_batch,
        delivery_limit=LIMIT,
        dependencies_up=up,
    )
    assert [o.result for o in outcomes] == [UNAVAILABLE] * 3
    assert {o.action for o in outcomes} == {Action.REQUEUE}
    assert calls == [3]  # the batch once, never event by event
    assert asked == [True]


def test_a_broken_check_counts_as_up_so_nothing_waits_on_a_bug():
    CHANNEL.delivered.clear()
    ledger = Ledger(poison={666})

    def broken_check(consumer: str) -> bool:
        raise RuntimeError("bug in the check")

    consumers = EventConsumers(
        topology=Topology(namespace="outage-test", delivery_limit=LIMIT),
        routes={CONSUMER: {PROMOTION_APPLIED: "handler"}},
        apply_batch=ledger,
        dependencies_up=broken_check,
    )
    consumers.hub = TimedHub()
    poison, fine = Message(666), Message(7)
    consumers.handle(
        CONSUMER, consumers.topology.queue(CONSUMER), {PROMOTION_APPLIED: "h"}, [poison, fine]
    )
    assert settled(poison, fine) == ["requeued", "acked"]
    assert consumers.outages == {}


def test_deliveries_during_a_parks_confirm_wait_are_handled_after_the_batch_settles():
    """Parking waits for the broker's confirm, and py-amqp hands over the
    deliveries that arrive meanwhile. A full batch among them must not be
    handled (and acked with "multiple") before the batch being settled is:
    that ack would cover a message of it still to be requeued."""
    CHANNEL.delivered.clear()
    ledger = Ledger(poison={666, 667})
    consumers = EventConsumers(
        topology=Topology(namespace="reentry-test", delivery_limit=LIMIT),
        routes={CONSUMER: {PROMOTION_APPLIED: "handler"}},
        apply_batch=ledger,
    )
    consumers.hub = TimedHub()
    spec = consumers.topology.queue(CONSUMER)
    batch = Batch(
        partial(consumers.handle, CONSUMER, spec, {PROMOTION_APPLIED: "handler"}),
        size=2,
        wait=0.005,
        hub=consumers.hub,
        held_back=consumers.settling,
    )
    consumers.batches = [batch]
    to_park = Message(666, deliveries=LIMIT - 1)  # fails on its last delivery
    to_requeue = Message(667)  # fails with deliveries left
    arriving: list[Message] = []
    parked: list[int] = []

    def park_while_two_more_arrive(message, spec, consumer_name, reason) -> None:
        parked.append(message.order_id)
        arriving.extend([Message(30), Message(31)])
        for new in arriving:
            batch.add(new)

    consumers.park = park_while_two_more_arrive
    batch.add(to_park)
    batch.add(to_requeue)

    assert parked == [666]
    assert settled(to_park, to_requeue) == ["acked", "requeued"]
    assert not to_requeue.acked
    assert ledger.applied == [30, 31]
    assert settled(*arriving) == ["acked", "acked"]
