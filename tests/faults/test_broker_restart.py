"""The whole broker down mid-stream, then back: nothing lost, nothing applied twice.

Every node of the test cluster is stopped (the machine's own broker is never
stopped: other work shares it); checkouts go on meanwhile, the outbox holds
their events, and everything resumes when the nodes return.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from marketplace_site.inbox.models import InboxEvent
from marketplace_site.orders.models import Order
from marketplace_site.orders.services import order_checkout
from marketplace_site.outbox.models import OutboxMessage
from marketplace_site.promotions.models import PromotionStats
from tests.events.broker import wait_until
from tests.faults.effects import (
    assert_applied_exactly_once,
    expected_counts,
    wait_until_every_consumer_applied,
)
from tests.processes import celery_worker, child_env, manage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def test_a_broker_restart_mid_stream_loses_nothing(
    on_cluster, topology, make_user, make_book, make_promotion, tmp_path
):
    promotion = make_promotion(per_customer_limit=100)
    books = [make_book("10.00", stock=1000) for _ in range(3)]
    customers = [make_user(f"buyer{i}") for i in range(4)]
    mail = tmp_path / "mail"
    env = child_env(
        RELAY_POLL_INTERVAL="0.02", DJANGO_EMAIL_BACKEND="file", DJANGO_EMAIL_FILE_PATH=str(mail)
    )
    relay = manage("run_relay", env=env, name="relay")
    worker = celery_worker(env)
    try:
        worker.wait_for_output(" ready.", timeout=60)

        def checkouts(count: int, placed: list[int]) -> None:
            try:
                for i in range(count):
                    order = order_checkout(user=customers[i % 4], items={b.pk: 1 for b in books})
                    placed.append(order.pk)
            finally:
                connection.close()

        checkouts(10, [])
        wait_until(lambda: InboxEvent.objects.count() >= 5, what="the stream to start")
        for node in on_cluster.nodes:
            on_cluster.stop(node)
        # Checkouts go on while the broker is down: the outbox holds the events.
        placed_while_down: list[int] = []
        during = threading.Thread(target=checkouts, args=(10, placed_while_down))
        during.start()
        during.join(60)
        assert not during.is_alive(), "checkouts hung while the broker was down"
        assert len(placed_while_down) == 10, "a checkout failed while the broker was down"
        # None of their events could have left: proof the broker really was down.
        assert OutboxMessage.objects.filter(state="pending").count() >= 20
        for node in on_cluster.nodes:
            on_cluster.start(node)
        on_cluster.wait_until_clustered()
        checkouts(10, [])

        total = 30
        assert Order.objects.count() == total
        wait_until(
            lambda: OutboxMessage.objects.filter(state="sent").count() == total * 2,
            timeout=90,
            what="the relay to publish every event after the restart",
        )
        wait_until_every_consumer_applied(timeout=90)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n--- relay ---\n{relay.text()[-3000:]}\n--- worker ---\n{worker.text()[-3000:]}"
        ) from None
    finally:
        relay.stop()
        worker.stop()
    # Each worker consumer applied each event of its types once, effects to match.
    assert expected_counts() == {
        "worker.promotions": total,
        "worker.campaigns": total,
        "worker.emails": total,
        "worker.vouchers": total,
    }
    assert_applied_exactly_once(topology=topology, mail=mail)
    stats = PromotionStats.objects.get(promotion=promotion)
    assert (stats.redemptions, stats.discount_total) == (total, Decimal("10.00") * total)
    assert (
        InboxEvent.objects.filter(consumer="worker.promotions")
        .values("event_id")
        .distinct()
        .count()
        == total
    )
