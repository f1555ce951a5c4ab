"""Past events sent again to one consumer (a recommender replica started
after the shop had a history learns the catalog and every purchase), or to
the history stream."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from events.contracts import BOOK_UPSERTED, PROMOTION_APPLIED, PURCHASE_COMPLETED, unwrap
from marketplace_site.catalog.services import book_publish_all
from marketplace_site.orders.services import order_checkout
from marketplace_site.outbox.models import OutboxMessage
from recommender.store import Store
from tests.events.broker import message_count, read_history, take
from tests.events.declare import declare, declare_history_stream
from tests.recommender.apply import apply_delivery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def history(make_book, make_user):
    """Three books, published; two orders; all of it sent by the relay."""
    books = [make_book("10.00", stock=10) for _ in range(3)]
    book_publish_all()
    alice, bob = make_user("alice"), make_user("bob")
    order_checkout(user=alice, items={books[0].pk: 1, books[1].pk: 2}, correlation_id="c1")
    order_checkout(user=bob, items={books[2].pk: 1}, correlation_id="c2")
    # Bob's purchase, the last event, still waits for the relay: not history yet.
    pending = OutboxMessage.objects.order_by("-id").first()
    assert pending.event_type == PURCHASE_COMPLETED
    OutboxMessage.objects.exclude(pk=pending.pk).update(state=OutboxMessage.State.SENT)
    return books, pending


def test_a_new_replica_gets_every_past_event_and_learns_the_shop(topology, history, tmp_path):
    books, pending = history
    queue = topology.recommender_queue("new-replica")
    declare(topology, queue)

    call_command("replay_events", "--consumer", "recommender.new-replica")

    sent = OutboxMessage.objects.filter(state=OutboxMessage.State.SENT).order_by("id")
    messages = take(queue.name, expected=sent.count())
    assert [unwrap(m.body).event_id for m in messages] == [str(r.event_id) for r in sent]
    assert str(pending.event_id) not in {m.properties["message_id"] for m in messages}
    # As the relay publishes them: the consumer sees no difference.
    assert {m.properties["type"] for m in messages} >= {BOOK_UPSERTED, PURCHASE_COMPLETED}

    with Store(tmp_path / "replica.sqlite3") as store:
        results = [
            apply_delivery(store, body=m.body, headers=None, delivery_limit=5).outcome.result
            for m in messages
        ]
        assert set(results) == {"applied"}
        assert {b.id for b in store.books()} == {b.pk for b in books}
        # Bob's order is still waiting for the relay: the relay will bring it.
        assert sorted((p.book_id, p.quantity) for p in store.purchases()) == [
            (books[0].pk, 1),
            (books[1].pk, 2),
        ]
        # Sent twice, each event is a duplicate the second time.
        again = [
            apply_delivery(store, body=m.body, headers=None, delivery_limit=5).outcome.result
            for m in messages
        ]
        assert set(again) == {"duplicate"}


def test_only_the_types_asked_for_and_only_that_queue(topology, history):
    queue = topology.recommender_queue("new-replica")
    other = topology.recommender_queue("old-replica")
    declare(topology, queue)
    declare(topology, other)

    call_command("replay_events", "--consumer", "recommender.new-replica", "--type", BOOK_UPSERTED)

    messages = take(queue.name, expected=3)
    assert [m.properties["type"] for m in messages] == [BOOK_UPSERTED] * 3
    assert message_count(other.name) == 0


def test_a_queue_that_does_not_exist_gets_nothing_and_says_so(topology, history):
    with pytest.raises(CommandError, match=r"no queue .*recommender\.nobody.*nothing was sent"):
        call_command("replay_events", "--consumer", "recommender.nobody")
    with pytest.raises(CommandError, match="unknown consumer"):
        call_command("replay_events", "--consumer", "worker.nonsense")


def test_the_history_stream_gets_the_past_the_relay_published_before_it_declared_it(
    topology, history
):
    """Once, after an upgrade: replicas added later learn what came before."""
    declare_history_stream(topology)

    call_command("replay_events", "--history")

    sent = OutboxMessage.objects.filter(
        state=OutboxMessage.State.SENT, event_type__in=topology.history.routing_keys
    ).order_by("id")
    kept = read_history(topology, expected=sent.count())
    assert [m.properties["message_id"] for m in kept] == [str(r.event_id) for r in sent]
    with pytest.raises(CommandError, match="the history keeps only"):
        call_command("replay_events", "--history", "--type", PROMOTION_APPLIED)


def test_without_a_history_stream_nothing_is_sent_and_it_says_why(topology, history):
    with pytest.raises(CommandError, match=r"no queue .*\.history.*relay run since"):
        call_command("replay_events", "--history")
