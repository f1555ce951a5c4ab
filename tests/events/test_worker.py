"""A real Celery worker consuming domain events from the real RabbitMQ."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal
from urllib.request import urlopen

import pytest

from events.contracts import PROMOTION_APPLIED
from events.dead_letters import CONSUMER_HEADER, REASON_HEADER
from marketplace_site.inbox.models import InboxEvent
from marketplace_site.promotions.models import PromotionStats
from tests.events.broker import take, wait_until
from tests.events.publish import envelope_bytes, publish
from tests.payloads import promotion_payload
from tests.processes import celery_worker, child_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def metrics_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def worker(topology, metrics_port):
    process = celery_worker(child_env(WORKER_METRICS_PORT=str(metrics_port)))
    try:
        process.wait_for_output(" ready.", timeout=60)
        yield process
    finally:
        process.stop()


# Each redemption is of an order of its own: one order counts once.
_orders = itertools.count(1)


def applied(promotion_id: int, discount: str, *, event_id: str | None = None) -> bytes:
    return envelope_bytes(
        promotion_payload(promotion_id=promotion_id, order_id=next(_orders), discount=discount),
        event_id=event_id,
    )


def stats(promotion) -> tuple[int, Decimal]:
    row = PromotionStats.objects.filter(promotion=promotion).first()
    return (row.redemptions, row.discount_total) if row else (0, Decimal("0"))


def test_events_are_applied_and_a_redelivery_is_a_no_op(
    worker, topology, make_promotion, metrics_port
):
    promotion = make_promotion()
    event_id = str(uuid.uuid4())
    first = applied(promotion.pk, "4.50", event_id=event_id)
    publish(topology, PROMOTION_APPLIED, first, first, applied(promotion.pk, "2.00"))
    wait_until(lambda: stats(promotion) == (2, Decimal("6.50")), what="two redemptions counted")
    wait_until(lambda: worker.text().count("result=duplicate") == 1, what="the duplicate seen")
    assert InboxEvent.objects.filter(consumer="worker.promotions").count() == 2
    assert stats(promotion) == (2, Decimal("6.50"))
    metrics = urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    handled = (
        'events_handled_total{consumer="worker.promotions",'
        'event_type="promotions.promotion_applied"'
    )
    assert f'{handled},result="applied"}} 2.0' in metrics
    assert f'{handled},result="duplicate"}} 1.0' in metrics


def test_a_malformed_message_is_parked_at_once_with_its_reason(worker, topology, make_promotion):
    promotion = make_promotion()
    publish(topology, PROMOTION_APPLIED, b"\x00not protobuf at all", applied(promotion.pk, "1.00"))
    wait_until(lambda: stats(promotion) == (1, Decimal("1.00")), what="the good event applied")
    [parked] = take(topology.queue("worker.promotions").dead_letter_queue, expected=1)
    assert parked.body == b"\x00not protobuf at all"
    assert parked.headers[REASON_HEADER].startswith("malformed: ")
    assert parked.headers[CONSUMER_HEADER] == "worker.promotions"


def test_a_poison_event_is_retried_to_the_limit_then_parked_while_others_flow(
    worker, topology, make_promotion
):
    promotion = make_promotion()
    poison_id = str(uuid.uuid4())
    poison = applied(999_999, "3.00", event_id=poison_id)  # no such promotion
    publish(topology, PROMOTION_APPLIED, poison)
    publish(topology, PROMOTION_APPLIED, *(applied(promotion.pk, "1.00") for _ in range(5)))
    wait_until(lambda: stats(promotion) == (5, Decimal("5.00")), what="good events applied")
    dead = topology.queue("worker.promotions").dead_letter_queue
    [parked] = take(dead, expected=1)
    assert parked.body == poison
    assert "UnknownPromotion: promotion 999999 does not exist" in parked.headers[REASON_HEADER]
    # Three deliveries (the limit), the last one parking it.
    assert worker.text().count("result=retry") == 2
    assert not InboxEvent.objects.filter(event_id=poison_id).exists()


def test_an_unknown_schema_version_is_parked_not_guessed(worker, topology):
    from bookstore.events.v1 import envelope_pb2

    envelope = envelope_pb2.EventEnvelope.FromString(applied(1, "1.00"))
    envelope.schema_version = 99
    publish(topology, PROMOTION_APPLIED, envelope.SerializeToString())
    [parked] = take(topology.queue("worker.promotions").dead_letter_queue, expected=1)
    assert "unknown schema version 99" in parked.headers[REASON_HEADER]


def test_a_parked_event_fixed_and_replayed_is_applied_once(worker, topology, make_promotion):
    from events.operators import dead_letters, replay
    from marketplace_site.promotions.models import Promotion
    from tests.events.broker import AMQP_URL, message_count

    spec = topology.queue("worker.promotions")
    event_id = str(uuid.uuid4())
    publish(topology, PROMOTION_APPLIED, applied(4242, "2.50", event_id=event_id))
    wait_until(lambda: message_count(spec.dead_letter_queue) == 1, what="the event parked")

    [listed] = dead_letters(AMQP_URL, spec)
    assert (listed.event_id, listed.event_type) == (event_id, PROMOTION_APPLIED)
    assert "promotion 4242 does not exist" in listed.reason
    assert message_count(spec.dead_letter_queue) == 1  # listing consumed nothing

    # The operator fixes the cause, then replays it: applied once, queue empty.
    fixed = make_promotion(name="Recovered")
    Promotion.objects.filter(pk=fixed.pk).update(id=4242)
    assert replay(AMQP_URL, spec, event_id=event_id) == 1
    wait_until(
        lambda: InboxEvent.objects.filter(event_id=event_id).exists(), what="the replay applied"
    )
    assert stats(Promotion.objects.get(pk=4242)) == (1, Decimal("2.50"))
    assert message_count(spec.dead_letter_queue) == 0
    # A second replay finds nothing; the inbox would ignore a duplicate anyway.
    assert replay(AMQP_URL, spec, event_id=event_id) == 0


def test_a_replay_to_a_queue_that_is_gone_moves_nothing(topology):
    """A retired replica's queue deleted, its dead-letter queue left: the
    parked message stays parked instead of being confirmed into nowhere."""
    from amqp import Message

    from events.operators import NoSuchQueue, replay
    from tests.events.broker import AMQP_URL, connection, message_count
    from tests.events.declare import declare

    spec = topology.recommender_queue("retired")
    declare(topology, spec)
    with connection() as conn, conn.channel() as channel:
        channel.basic_publish(
            Message(applied(1, "1.00"), delivery_mode=2), exchange="", routing_key=spec.name
        )
    # Parked (as a consumer would), then the queue itself goes.
    with connection() as conn, conn.channel() as channel:
        message = channel.basic_get(spec.name, no_ack=False)
        channel.basic_publish(
            Message(message.body, delivery_mode=2), exchange="", routing_key=spec.dead_letter_queue
        )
        channel.basic_ack(message.delivery_tag)
        channel.queue_delete(spec.name)
    try:
        with pytest.raises(NoSuchQueue, match=f"there is no queue {spec.name}"):
            replay(AMQP_URL, spec, everything=True)
        assert message_count(spec.dead_letter_queue) == 1
    finally:
        with connection() as conn, conn.channel() as channel:
            channel.queue_delete(spec.dead_letter_queue)


def test_dead_letters_list_prints_one_line_per_parked_message(worker, topology):
    """Reasons and headers come from producers: a newline, a tab or a terminal
    escape in them stays inside its own line and column of the listing."""
    import subprocess
    import sys

    from bookstore.events.v1 import envelope_pb2
    from tests.events.broker import message_count

    envelope = envelope_pb2.EventEnvelope.FromString(applied(1, "1.00"))
    envelope.payload.type_url = "type.example.com/first line\nsecond line\r\x1b[2Jcleared"
    publish(topology, PROMOTION_APPLIED, envelope.SerializeToString())
    publish(
        topology, PROMOTION_APPLIED, b"\x00not protobuf", type="a\nb", message_id="id\twith tab"
    )
    dead = topology.queue("worker.promotions").dead_letter_queue
    wait_until(lambda: message_count(dead) == 2, what="both messages parked")

    listing = subprocess.run(
        [sys.executable, "-m", "events", "dead-letters", "list", "--consumer", "worker.promotions"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = listing.stdout.splitlines()
    assert len(lines) == 2, listing.stdout
    assert all(line.count("\t") == 3 for line in lines), lines
    assert all(line.isprintable() for line in "".join(lines).split("\t")), lines
    by_type = {line.split("\t")[1]: line.split("\t") for line in lines}
    assert by_type["?"][3].endswith(
        "carries type.example.com/first line\\nsecond line\\r\\x1b[2Jcleared, "
        "not bookstore.events.v1.PromotionApplied"
    )
    assert by_type["a\\nb"][2] == "id\\twith tab"
    assert "2 parked message(s)" in listing.stderr
    assert message_count(dead) == 2  # listing consumed nothing
