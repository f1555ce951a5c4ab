"""Batches of delivered messages: one transaction for many events, and a
failing event costs the others a second try, never their outcome."""

from __future__ import annotations

from collections.abc import Sequence, Set

from bookstore.events.v1 import events_pb2
from events.celery_consumer import Batch, ack_all
from events.contracts import PROMOTION_APPLIED, Event, payload_as
from events.dispatch import Action, Delivery, dispatch_batch
from tests.events.publish import envelope_bytes
from tests.payloads import book_payload, promotion_payload

CONSUMER = "worker.promotions"
LIMIT = 5


def delivery(order_id: int, *, event_id: str | None = None, deliveries: int = 0) -> Delivery:
    body = envelope_bytes(
        promotion_payload(promotion_id=1, order_id=order_id, discount="1.00"),
        event_id=event_id,
    )
    return Delivery(body, {"x-delivery-count": deliveries} if deliveries else None)


class Ledger:
    """An apply_batch that records what it applied, once per event id, and
    fails (all or nothing, as a transaction) on a batch holding a poison order."""

    def __init__(self, poison: Set[int] = frozenset()) -> None:
        self.poison = poison
        self.applied: list[int] = []
        self.seen: set[str] = set()
        self.calls: list[int] = []

    def __call__(self, consumer: str, events: Sequence[Event], handler: object) -> set[str]:
        self.calls.append(len(events))
        # As the inbox: an event already recorded, or twice in the batch, is applied once.
        fresh = list({e.event_id: e for e in events if e.event_id not in self.seen}.values())
        orders = [payload_as(e, events_pb2.PromotionApplied).order_id for e in fresh]
        if any(order_id in self.poison for order_id in orders):
            raise ValueError("poison order")
        self.seen.update(e.event_id for e in fresh)
        self.applied += orders
        return {e.event_id for e in fresh}


def run(deliveries: list[Delivery], ledger: Ledger) -> list:
    return dispatch_batch(
        consumer=CONSUMER,
        deliveries=deliveries,
        handlers={PROMOTION_APPLIED: "handler"},
        apply_batch=ledger,
        delivery_limit=LIMIT,
    )


def test_a_batch_is_applied_in_one_call_and_each_message_acked():
    ledger = Ledger()
    outcomes = run([delivery(n) for n in range(1, 6)], ledger)
    assert ledger.calls == [5]
    assert ledger.applied == [1, 2, 3, 4, 5]
    assert [(o.action, o.result) for o in outcomes] == [(Action.ACK, "applied")] * 5
    assert [o.event.payload.order_id for o in outcomes] == [1, 2, 3, 4, 5]


def test_a_poison_event_is_retried_alone_and_the_rest_are_applied():
    ledger = Ledger(poison={3})
    outcomes = run([delivery(n) for n in range(1, 6)], ledger)
    assert ledger.applied == [1, 2, 4, 5]
    assert [o.result for o in outcomes] == ["applied", "applied", "retry", "applied", "applied"]
    assert outcomes[2].action is Action.REQUEUE
    assert "poison order" in outcomes[2].reason


def test_a_poison_event_on_its_last_delivery_is_parked():
    ledger = Ledger(poison={2})
    outcomes = run([delivery(1), delivery(2, deliveries=LIMIT - 1)], ledger)
    assert [o.action for o in outcomes] == [Action.ACK, Action.PARK]
    assert outcomes[1].reason.startswith("failed: ValueError: poison order")
    assert ledger.applied == [1]


def test_malformed_and_unknown_messages_do_not_hold_up_the_batch():
    ledger = Ledger()
    unknown = Delivery(envelope_bytes(book_payload(book_id=1, title="t", category=1, active=True)))
    outcomes = run([delivery(1), Delivery(b"\xff not an envelope"), unknown, delivery(2)], ledger)
    assert [o.result for o in outcomes] == ["applied", "malformed", "ignored", "applied"]
    assert outcomes[1].action is Action.PARK
    assert outcomes[2].action is Action.ACK
    assert ledger.calls == [2]


def test_a_body_decoded_as_text_is_parked_as_malformed():
    """py-amqp hands over a str when the publisher set a text content_encoding."""
    ledger = Ledger()
    text = Delivery(envelope_bytes(promotion_payload(order_id=9)).decode("latin-1"))
    outcomes = run([delivery(1), text, delivery(2)], ledger)
    assert [o.result for o in outcomes] == ["applied", "malformed", "applied"]
    assert outcomes[1].action is Action.PARK
    assert "not bytes" in outcomes[1].reason
    assert ledger.applied == [1, 2]


def test_the_same_event_twice_in_a_batch_is_applied_once():
    ledger = Ledger()
    event_id = "5b0c8b0e-6a43-4b8f-9a55-0a3c1c9ad001"
    outcomes = run([delivery(1, event_id=event_id), delivery(1, event_id=event_id)], ledger)
    assert [o.result for o in outcomes] == ["applied", "duplicate"]
    assert ledger.applied == [1]


def test_events_applied_before_are_duplicates():
    ledger = Ledger()
    first = delivery(1)
    run([first], ledger)
    outcomes = run([first, delivery(2)], ledger)
    assert [o.result for o in outcomes] == ["duplicate", "applied"]


class FakeHub:
    """The worker's event loop, as far as a Batch uses it: timers fired by hand."""

    class Timer:
        def __init__(self, callback) -> None:
            self.callback = callback
            self.cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self) -> None:
        self.timers: list[FakeHub.Timer] = []

    def call_later(self, delay: float, callback) -> Timer:
        timer = self.Timer(callback)
        self.timers.append(timer)
        return timer

    def fire(self) -> None:
        for timer in [t for t in self.timers if not t.cancelled]:
            timer.cancelled = True
            timer.callback()


def test_a_batch_is_handled_when_full():
    handled: list[list[str]] = []
    batch = Batch(handled.append, size=3, wait=0.005, hub=FakeHub())
    for message in "abcd":
        batch.add(message)
    assert handled == [["a", "b", "c"]]
    assert batch.pending == ["d"]


def test_a_partial_batch_is_handled_when_its_wait_is_over():
    hub = FakeHub()
    handled: list[list[str]] = []
    batch = Batch(handled.append, size=32, wait=0.005, hub=hub)
    batch.add("a")
    batch.add("b")
    assert handled == []
    hub.fire()
    assert handled == [["a", "b"]]
    batch.add("c")
    hub.fire()
    assert handled == [["a", "b"], ["c"]]


def test_discarded_messages_are_never_handled():
    """On a closing channel: the broker redelivers them, so handling them would
    only commit work whose ack cannot reach it."""
    hub = FakeHub()
    handled: list[list[str]] = []
    batch = Batch(handled.append, size=32, wait=0.005, hub=hub)
    batch.add("a")
    batch.discard()
    hub.fire()
    assert handled == []
    assert batch.pending == []


class FakeMessage:
    def __init__(self, tag: int, *, requeued: bool = False) -> None:
        self.delivery_tag = tag
        self.acknowledged = requeued
        self.acks: list[bool] = []

    def ack(self, multiple: bool = False) -> None:
        self.acks.append(multiple)
        self.acknowledged = True


def test_a_batch_is_acked_with_one_multiple_ack_on_its_last_message():
    batch = [FakeMessage(1), FakeMessage(2), FakeMessage(3)]
    ack_all(batch)
    assert [m.acks for m in batch] == [[], [], [True]]


def test_a_requeued_last_message_is_not_acked_the_one_before_it_is():
    """A requeued delivery is settled already; acking it again is an error."""
    batch = [FakeMessage(1), FakeMessage(2), FakeMessage(3, requeued=True)]
    ack_all(batch)
    assert [m.acks for m in batch] == [[], [True], []]
    only_requeued = [FakeMessage(4, requeued=True)]
    ack_all(only_requeued)
    assert only_requeued[0].acks == []
