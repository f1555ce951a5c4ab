"""The outbox relay against the real RabbitMQ: confirms, marking, retries, restarts."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import pytest
from django.db import transaction

from bookstore.events.v1 import events_pb2
from events.relay import Relay
from marketplace_site.outbox.models import OutboxMessage
from marketplace_site.outbox.relay_source import DjangoOutboxSource
from marketplace_site.outbox.services import outbox_record
from tests.events.broker import AMQP_URL, read_history, take, wait_until
from tests.grpc_server import ServerThread
from tests.payloads import promotion_payload, purchase_payload
from tests.processes import child_env, crashing_relay, manage
from tests.tracing import SPANS, within

pytestmark = pytest.mark.django_db(transaction=True)


def record(n: int, *, book_id_base: int = 1) -> list[OutboxMessage]:
    with transaction.atomic():
        return [
            outbox_record(
                payload=events_pb2.BookUpserted(book_id=book_id_base + i, title=f"B{i}"),
                correlation_id=f"corr-{i}",
            )
            for i in range(n)
        ]


class RunningRelay:
    def __init__(self, topology, source_factory=DjangoOutboxSource, **options) -> None:
        self.thread = ServerThread()
        self.relay = Relay(
            source_factory=source_factory,
            amqp_url=AMQP_URL,
            topology=topology,
            poll_interval=0.02,
            **options,
        )
        self.stop = asyncio.Event()
        self.task = asyncio.run_coroutine_threadsafe(self.relay.run(self.stop), self.thread.loop)

    def close(self) -> None:
        self.thread.loop.call_soon_threadsafe(self.stop.set)
        self.task.result(15)
        self.thread.run(self.relay.close())
        self.thread.close()


@pytest.fixture
def run_relay(topology):
    running: list[RunningRelay] = []

    def start(**options) -> RunningRelay:
        relay = RunningRelay(topology, **options)
        running.append(relay)
        return relay

    yield start
    for relay in running:
        relay.close()


@pytest.fixture
def catalog_queue(topology) -> Iterator[str]:
    """The recommender-style queue bound to book events, declared by a consumer."""
    from tests.events.declare import declare

    spec = topology.recommender_queue("relay-test")
    declare(topology, spec)
    yield spec.name
    from tests.events.broker import amqp_channel, connection

    with connection() as conn, amqp_channel(conn) as channel:
        channel.queue_delete(spec.name)
        channel.queue_delete(spec.dead_letter_queue)


def sent_count() -> int:
    return OutboxMessage.objects.filter(state=OutboxMessage.State.SENT).count()


def test_rows_are_published_persistent_with_their_ids_then_marked_sent(run_relay, catalog_queue):
    rows = record(20)
    run_relay()
    messages = take(catalog_queue, expected=20)
    assert [m.properties["message_id"] for m in messages] == [str(r.event_id) for r in rows]
    first = messages[0]
    assert first.delivery_info["routing_key"] == "catalog.book_upserted"
    assert first.properties["delivery_mode"] == 2
    assert first.properties["correlation_id"] == "corr-0"
    assert first.properties["type"] == "catalog.book_upserted"
    assert first.body == bytes(rows[0].envelope)
    wait_until(lambda: sent_count() == 20, what="rows marked sent")
    assert all(m.sent_at and m.attempts == 1 for m in OutboxMessage.objects.all())


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize("traced", [True, False])
def test_a_row_goes_out_in_the_trace_it_was_recorded_in(run_relay, catalog_queue, traced):
    """Traced, in a publish span of that trace; untraced (OTEL_SDK_DISABLED),
    with no span, the stored context passed on as it is."""
    with within({"traceparent": TRACEPARENT}):
        [row] = record(1)
    run_relay(traced=traced)
    [message] = take(catalog_queue, expected=1)
    wait_until(lambda: sent_count() == 1, what="the row marked sent")
    sent = message.headers["traceparent"]
    published = [s for s in SPANS.get_finished_spans() if s.name.startswith("publish ")]
    if traced:
        [span] = published
        assert sent == f"00-{TRACEPARENT.split('-')[1]}-{span.context.span_id:016x}-01"
    else:
        assert (published, sent) == ([], row.trace_context["traceparent"])


def test_a_row_committed_while_idle_goes_out_promptly(run_relay, catalog_queue):
    run_relay()
    time.sleep(0.3)  # let it go idle
    started = time.monotonic()
    record(1)
    [message] = take(catalog_queue, expected=1, timeout=5)
    # The target is ~100 ms (measured by `make bench`); this only proves it is not
    # waiting for a long poll or a batch to fill.
    assert time.monotonic() - started < 2
    assert message.properties["type"] == "catalog.book_upserted"


@pytest.mark.postgres
def test_on_postgresql_a_commit_wakes_the_idle_relay_at_once(catalog_queue):
    """Its polls an hour apart: only the commit's notification can explain the
    row going out."""
    relay = manage(
        "run_relay",
        env=child_env(RELAY_POLL_INTERVAL="3600", RELAY_SAFETY_POLL_INTERVAL="3600"),
    )
    try:
        relay.wait_for_output("woken by PostgreSQL notifications", timeout=30)
        time.sleep(0.5)  # idle now
        for n in range(3):  # each commit, not only the first
            [row] = record(1, book_id_base=100 + n)
            [message] = take(catalog_queue, expected=1, timeout=10)
            assert message.properties["message_id"] == str(row.event_id)
    finally:
        relay.stop()


def test_every_event_the_recommender_learns_is_kept_in_the_history(run_relay, topology):
    """With no recommender replica yet: one added later reads them there."""
    books = record(3)
    with transaction.atomic():
        sale = outbox_record(payload=purchase_payload(), correlation_id="sale")
        outbox_record(payload=promotion_payload(), correlation_id="not-for-the-recommender")
    run_relay()
    wait_until(lambda: sent_count() == 4, what="the recommender's events sent")
    history = read_history(topology, expected=4)
    assert [m.properties["message_id"] for m in history] == [
        str(row.event_id) for row in (*books, sale)
    ]
    assert history[0].body == bytes(books[0].envelope)


def test_a_history_declared_with_another_retention_is_kept_and_publishing_goes_on(
    run_relay, topology, caplog
):
    from tests.events.declare import declare_history_stream

    declare_history_stream(replace(topology, history_max_bytes=10_000_000))
    [row] = record(1)
    run_relay()
    wait_until(lambda: sent_count() == 1, what="the row sent")
    [kept] = read_history(topology, expected=1)
    assert kept.properties["message_id"] == str(row.event_id)
    assert f"the history stream {topology.history.name} keeps the retention" in caplog.text


def test_an_unroutable_event_stays_pending_with_its_error(run_relay, topology):
    # No queue is bound for promotion events in this namespace (the history
    # keeps only what the recommender learns): mandatory makes the broker
    # return the message instead of dropping it.
    with transaction.atomic():
        row = outbox_record(payload=promotion_payload(), correlation_id="c")
    run_relay()
    wait_until(
        lambda: OutboxMessage.objects.get(pk=row.pk).attempts >= 1, what="an attempt recorded"
    )
    row.refresh_from_db()
    assert row.state == OutboxMessage.State.PENDING
    assert "NO_ROUTE" in row.last_error or "returned" in row.last_error.lower()
    assert row.next_attempt_at > row.created_at


def test_a_relay_killed_after_the_confirm_publishes_again_on_restart(catalog_queue, topology):
    rows = record(5)
    # A real process, killed by a failpoint right after the broker's confirms
    # and before it marks anything: the worst moment.
    crashing = crashing_relay(child_env())
    assert crashing.proc.wait(30) == 137, crashing.text()
    assert sent_count() == 0
    relay = manage("run_relay", env=child_env())
    try:
        wait_until(lambda: sent_count() == 5, what="the restarted relay to mark the rows")
    finally:
        relay.stop()
    ids = Counter(m.properties["message_id"] for m in take(catalog_queue, expected=10))
    # Every row twice: at least once is the relay's promise; consumers dedupe.
    assert ids == Counter({str(r.event_id): 2 for r in rows})


@pytest.mark.postgres
def test_two_relays_at_once_publish_each_row_once(run_relay, catalog_queue):
    rows = record(300)
    run_relay(batch_size=20)
    run_relay(batch_size=20)
    wait_until(lambda: sent_count() == 300, what="all rows sent")
    ids = Counter(m.properties["message_id"] for m in take(catalog_queue, expected=300))
    assert ids == Counter({str(r.event_id): 1 for r in rows})


def test_event_ids_are_uuids(run_relay, catalog_queue):
    record(1)
    run_relay()
    [message] = take(catalog_queue, expected=1)
    uuid.UUID(message.properties["message_id"])


def test_a_database_error_while_claiming_does_not_stop_the_relay(
    run_relay, catalog_queue, monkeypatch
):
    """The claim's query fails once (a restart, a failover, a killed
    session): the next round claims again and publishes every row."""
    from django.db import DatabaseError

    from marketplace_site.outbox import relay_source

    rows = record(3)
    real_row = relay_source.OutboxRow
    failures = []

    def row_failing_once(**fields):
        if not failures:
            failures.append(fields["id"])
            raise DatabaseError("server closed the connection unexpectedly")
        return real_row(**fields)

    monkeypatch.setattr(relay_source, "OutboxRow", row_failing_once)
    run_relay()
    messages = take(catalog_queue, expected=3)
    assert failures == [rows[0].pk]
    assert [m.properties["message_id"] for m in messages] == [str(r.event_id) for r in rows]
    wait_until(lambda: sent_count() == 3, what="every row marked sent")
