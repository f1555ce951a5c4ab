"""The consumer core, without a broker: batches of delivered messages, one
transaction for many events, a failing event costs the others a second try,
never their outcome; every decision (ack, requeue, park with a reason, hold,
skip), the parked message's properties, the log line and the count."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from bookstore.events.v1 import events_pb2
from events import consuming
from events.consuming import Action, ApplyBatch, Backoff, Delivery, EventQueue, Result
from events.contracts import CONTENT_TYPE, PROMOTION_APPLIED, Event, payload_as
from events.dead_letters import CONSUMER_HEADER, QUEUE_HEADER, REASON_HEADER
from events.metrics import HANDLED
from tests.events.publish import envelope_bytes
from tests.payloads import book_payload, promotion_payload
from tests.tracing import SPANS

CONSUMER = "worker.promotions"
QUEUE = "test.worker.promotions"
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

    def __init__(self, poison: frozenset[int] = frozenset()) -> None:
        self.poison = poison
        self.applied: list[int] = []
        self.seen: set[str] = set()
        self.calls: list[int] = []

    def __call__(self, consumer: str, events: Sequence[Event], handler: object) -> set[str]:
        self.calls.append(len(events))
        # As the inbox: an event already recorded, or twice in the batch, is applied once.
        fresh = list({e.event_id: e for e in events if e.event_id not in self.seen}.values())
        orders = {e.event_id: payload_as(e, events_pb2.PromotionApplied).order_id for e in fresh}
        if self.poison & set(orders.values()):
            raise ValueError("poison order")
        self.seen.update(orders)
        self.applied += orders.values()
        return {e.event_id for e in fresh}


class Database:
    """Up or down; while down, every batch applied through it fails."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.up = True
        self.checks = 0
        self.tries = 0

    def apply_batch(self, consumer: str, events: Sequence[Event], handler: object) -> set[str]:
        self.tries += 1
        if not self.up:
            raise ConnectionError("connection refused")
        return self.ledger(consumer, events, handler)

    def is_up(self, consumer: str) -> bool:
        self.checks += 1
        return self.up


def event_queue(apply_batch: ApplyBatch[object], **options) -> EventQueue:
    return EventQueue(
        consumer=CONSUMER,
        queue=QUEUE,
        handlers={PROMOTION_APPLIED: "handler"},
        apply_batch=apply_batch,
        delivery_limit=LIMIT,
        **options,
    )


def run(deliveries: list[Delivery], ledger: Ledger) -> list:
    return event_queue(ledger).decide(deliveries)


def test_result_labels_are_those_the_dashboards_know():
    assert [r.value for r in Result] == [
        "applied",
        "duplicate",
        "malformed",
        "unhandled",
        "failed",
        "retry",
        "unavailable",
        "skipped",
    ]


def test_a_batch_is_applied_in_one_call_and_each_message_acked():
    ledger = Ledger()
    decisions = run([delivery(n) for n in range(1, 6)], ledger)
    assert ledger.calls == [5]
    assert ledger.applied == [1, 2, 3, 4, 5]
    assert [(d.action, d.result) for d in decisions] == [(Action.ACK, Result.APPLIED)] * 5
    assert [d.event.payload.order_id for d in decisions] == [1, 2, 3, 4, 5]


def test_a_poison_event_is_retried_alone_and_the_rest_are_applied():
    ledger = Ledger(poison={3})
    decisions = run([delivery(n) for n in range(1, 6)], ledger)
    assert ledger.applied == [1, 2, 4, 5]
    assert [d.result for d in decisions] == ["applied", "applied", "retry", "applied", "applied"]
    assert decisions[2].action is Action.REQUEUE
    assert "poison order" in decisions[2].reason
    assert decisions[2].parked is None


def test_a_poison_event_on_its_last_delivery_is_parked_with_its_properties_and_why():
    ledger = Ledger(poison={2})
    last = delivery(2, deliveries=LIMIT - 1)
    last = Delivery(
        last.body, last.headers, {"message_id": "m-2", "correlation_id": "c-2", "type": "t"}
    )
    decisions = run([delivery(1), last], ledger)
    assert [d.action for d in decisions] == [Action.ACK, Action.PARK]
    assert decisions[1].reason.startswith("failed: ValueError: poison order")
    assert ledger.applied == [1]
    parked = decisions[1].parked
    assert parked["headers"][REASON_HEADER] == decisions[1].reason
    assert (parked["headers"][CONSUMER_HEADER], parked["headers"][QUEUE_HEADER]) == (
        CONSUMER,
        QUEUE,
    )
    assert parked["headers"]["x-delivery-count"] == LIMIT - 1
    assert (parked["message_id"], parked["correlation_id"], parked["type"]) == ("m-2", "c-2", "t")
    assert (parked["content_type"], parked["delivery_mode"]) == (CONTENT_TYPE, 2)


def test_malformed_and_unhandled_messages_are_parked_and_do_not_hold_up_the_batch():
    ledger = Ledger()
    unknown = Delivery(envelope_bytes(book_payload(book_id=1, title="t", category=1, active=True)))
    decisions = run([delivery(1), Delivery(b"\xff not an envelope"), unknown, delivery(2)], ledger)
    assert [d.result for d in decisions] == ["applied", "malformed", "unhandled", "applied"]
    assert [d.action for d in decisions] == [Action.ACK, Action.PARK, Action.PARK, Action.ACK]
    assert decisions[2].reason == f"unhandled: {CONSUMER} has no handler for catalog.book_upserted"
    assert decisions[2].parked["headers"][REASON_HEADER] == decisions[2].reason
    assert ledger.calls == [2]


def test_a_body_decoded_as_text_is_parked_as_malformed():
    """py-amqp hands over a str when the publisher set a text content_encoding."""
    ledger = Ledger()
    text = Delivery(envelope_bytes(promotion_payload(order_id=9)).decode("latin-1"))
    decisions = run([delivery(1), text, delivery(2)], ledger)
    assert [d.result for d in decisions] == ["applied", "malformed", "applied"]
    assert decisions[1].action is Action.PARK
    assert "not bytes" in decisions[1].reason
    assert ledger.applied == [1, 2]


def test_a_decoder_failing_unexpectedly_is_retried_then_parked(monkeypatch):
    def broken(body: bytes) -> Event:
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(consuming, "unwrap", broken)
    decisions = run([delivery(1), delivery(2, deliveries=LIMIT - 1)], Ledger())
    assert [(d.action, d.result) for d in decisions] == [
        (Action.REQUEUE, Result.RETRY),
        (Action.PARK, Result.FAILED),
    ]
    assert decisions[1].reason == "failed: RuntimeError: decoder bug"


def test_the_same_event_twice_in_a_batch_is_applied_once():
    ledger = Ledger()
    event_id = "5b0c8b0e-6a43-4b8f-9a55-0a3c1c9ad001"
    decisions = run([delivery(1, event_id=event_id), delivery(1, event_id=event_id)], ledger)
    assert [d.result for d in decisions] == ["applied", "duplicate"]
    assert ledger.applied == [1]


def test_events_applied_before_are_duplicates():
    ledger = Ledger()
    first = delivery(1)
    run([first], ledger)
    decisions = run([first, delivery(2)], ledger)
    assert [d.result for d in decisions] == ["duplicate", "applied"]


def test_the_batch_is_full_at_its_size_and_taken_whole():
    queue = event_queue(Ledger(), batch_size=3)
    assert [queue.add(n, delivery(n)) for n in (1, 2, 3)] == [False, False, True]
    assert [message for message, _ in queue.take()] == [1, 2, 3]
    assert queue.take() == []


def test_a_batch_is_settled_in_the_order_it_came():
    queue = event_queue(Ledger(poison={2}))
    step = queue.handle([(n, delivery(n)) for n in (1, 2, 3)])
    assert [(s.message, s.decision.action) for s in step.settle] == [
        (1, Action.ACK),
        (2, Action.REQUEUE),
        (3, Action.ACK),
    ]
    assert step.retry_in is None


def test_a_stream_retries_a_failing_event_as_often_as_a_queue_would_then_skips_it():
    ledger = Ledger(poison={2})
    queue = event_queue(ledger, stream=True)
    decisions = queue.decide_history([delivery(1), delivery(2), Delivery(b"junk")])
    assert [(d.action, d.result) for d in decisions] == [
        (Action.ACK, Result.APPLIED),
        (Action.ACK, Result.SKIPPED),
        (Action.ACK, Result.SKIPPED),
    ]
    assert decisions[1].reason == "failed: ValueError: poison order"
    assert decisions[2].reason.startswith("malformed: ")
    # The batch, the good one alone, then the poison alone on each of its LIMIT deliveries.
    assert ledger.calls == [2, 1] + [1] * LIMIT


def test_settled_messages_are_logged_and_counted(caplog):
    caplog.set_level(logging.DEBUG, logger="events.consuming")
    queue = event_queue(Ledger())
    [good, bad] = [delivery(1), Delivery(b"junk", properties={"message_id": "m-junk"})]
    before = HANDLED.labels(consumer=CONSUMER, event_type="malformed", result="malformed")._value
    before = before.get()
    for d, decision in zip([good, bad], queue.decide([good, bad]), strict=True):
        queue.settled(d, decision)
    assert queue.results == {"applied": 1, "malformed": 1}
    after = HANDLED.labels(consumer=CONSUMER, event_type="malformed", result="malformed")._value
    assert after.get() == before + 1
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event ")]
    assert lines[0].startswith(f"event consumer={CONSUMER} type={PROMOTION_APPLIED} id=")
    assert lines[0].endswith("result=applied")
    assert lines[1].startswith(f"event consumer={CONSUMER} type=? id=m-junk result=malformed")


def test_a_stream_logs_only_what_it_skips(caplog):
    caplog.set_level(logging.INFO, logger="events.consuming")
    queue = event_queue(Ledger(), stream=True)
    deliveries = [delivery(1), Delivery(b"junk", {"x-stream-offset": 7})]
    for d, decision in zip(deliveries, queue.decide_history(deliveries), strict=True):
        queue.settled(d, decision)
    assert queue.results == {"applied": 1, "skipped": 1}
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"events: skipped ? at offset 7 of {QUEUE}: malformed: ")


@pytest.mark.parametrize(
    ("first", "last", "waits"),
    [(0.5, 1.5, [0.5, 1.0, 1.5, 1.5]), (0.5, 30.0, [0.5, 1.0, 2.0, 4.0]), (0.5, 0.2, [0.2, 0.2])],
)
def test_backoff_doubles_up_to_its_last_wait_and_starts_again_after_a_reset(first, last, waits):
    backoff = Backoff(first, last)
    assert [backoff.next() for _ in waits] == waits
    backoff.reset()
    assert backoff.next() == waits[0]


def test_a_batch_applied_is_one_info_line_and_each_event_a_debug_line(caplog):
    """A burst (a catalog loaded) is a few lines to read, not one per event."""
    caplog.set_level(logging.DEBUG, logger="events.consuming")
    queue = event_queue(Ledger())
    deliveries = [delivery(n) for n in range(1, 4)]
    for one, decision in zip(deliveries, queue.decide(deliveries), strict=True):
        queue.settled(one, decision)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [m for level, m in lines if level == logging.INFO] == [
        f"events: {CONSUMER} applied 3 events (3 {PROMOTION_APPLIED})"
    ]
    assert sum("result=applied" in m for level, m in lines if level == logging.DEBUG) == 3


def test_with_log_each_every_event_has_its_info_line(caplog):
    caplog.set_level(logging.INFO, logger="events.consuming")
    queue = event_queue(Ledger(), log_each=True)
    deliveries = [delivery(n) for n in range(1, 4)]
    for one, decision in zip(deliveries, queue.decide(deliveries), strict=True):
        queue.settled(one, decision)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert all("result=applied" in m for m in messages)


def test_with_a_dependency_down_batches_are_held_and_retried_after_growing_waits():
    """The core alone: nothing is settled (so no delivery is spent, not even a
    last one), later batches wait behind, and all are applied in order once back."""
    ledger = Ledger()
    outage = Database(ledger)
    queue = event_queue(
        outage.apply_batch, dependencies_up=lambda: outage.is_up(CONSUMER), outage_waits=(0.5, 1.5)
    )
    outage.up = False
    first = queue.handle([(1, delivery(1, deliveries=LIMIT - 1)), (2, delivery(2))])
    assert (first.settle, first.retry_in, outage.tries) == ([], 0.5, 1)  # once, not one by one
    later = queue.handle([(3, delivery(3))])
    assert (later.settle, later.retry_in, outage.tries) == ([], None, 1)  # behind, not tried
    # Still down: the dependency is asked, the events are not tried.
    assert [queue.retry_held().retry_in for _ in range(3)] == [1.0, 1.5, 1.5]
    assert outage.tries == 1

    outage.up = True
    back = queue.retry_held()
    assert [(s.message, s.decision.action, s.decision.result) for s in back.settle] == [
        (1, Action.ACK, Result.APPLIED),
        (2, Action.ACK, Result.APPLIED),
        (3, Action.ACK, Result.APPLIED),
    ]
    assert (back.retry_in, queue.held, ledger.applied) == (None, [], [1, 2, 3])

    outage.up = False  # a new outage waits the first wait again
    assert queue.handle([(4, delivery(4))]).retry_in == 0.5


def test_untraced_the_core_makes_no_span_and_decides_the_same():
    """OTEL_SDK_DISABLED's baseline: no span for an event or a batch, the
    culprit still found one event at a time."""
    deliveries = [delivery(n) for n in range(1, 5)]
    traced = event_queue(Ledger(poison={3})).decide(deliveries)
    assert {s.name for s in SPANS.get_finished_spans()} == {
        f"process {PROMOTION_APPLIED}",
        "apply 4 events",
    }
    SPANS.clear()
    untraced = event_queue(Ledger(poison={3}), traced=False).decide(deliveries)
    assert SPANS.get_finished_spans() == ()
    assert [(d.action, d.result) for d in untraced] == [(d.action, d.result) for d in traced]
