"""The broker restarted mid-stream: nothing lost, nothing applied twice."""

from __future__ import annotations

import shutil
import subprocess
import threading
from decimal import Decimal

import pytest

from marketplace_site.inbox.models import InboxEvent
from marketplace_site.orders.services import order_checkout
from marketplace_site.outbox.models import OutboxMessage
from marketplace_site.promotions.models import PromotionStats
from tests.events.broker import wait_until
from tests.processes import celery_worker, child_env, manage

pytestmark = pytest.mark.django_db(transaction=True)


def rabbitmqctl(*args: str) -> None:
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("this fault test restarts the local broker and needs rabbitmqctl")
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def test_a_broker_restart_mid_stream_loses_nothing(topology, make_user, make_book, make_promotion):
    promotion = make_promotion(per_customer_limit=100)
    books = [make_book("10.00", stock=1000) for _ in range(3)]
    customers = [make_user(f"buyer{i}") for i in range(4)]
    env = child_env(RELAY_POLL_INTERVAL="0.02")
    relay = manage("run_relay", env=env, name="relay")
    worker = celery_worker(env)
    try:
        worker.wait_for_output(" ready.", timeout=60)

        def checkouts(count: int) -> None:
            for i in range(count):
                order_checkout(user=customers[i % 4], items={b.pk: 1 for b in books})

        checkouts(10)
        wait_until(lambda: InboxEvent.objects.count() >= 5, what="the stream to start")
        rabbitmqctl("stop_app")
        # Checkouts go on while the broker is down: the outbox holds the events.
        during = threading.Thread(target=checkouts, args=(10,))
        during.start()
        during.join(60)
        rabbitmqctl("start_app")
        checkouts(10)

        total = 30
        wait_until(
            lambda: OutboxMessage.objects.filter(state="sent").count() == total * 2,
            timeout=90,
            what="the relay to publish every event after the restart",
        )
        wait_until(
            lambda: InboxEvent.objects.filter(consumer="worker.promotions").count() == total,
            timeout=90,
            what="the worker to apply every event",
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n--- relay ---\n{relay.text()[-3000:]}\n--- worker ---\n{worker.text()[-3000:]}"
        ) from None
    finally:
        relay.stop()
        worker.stop()
    stats = PromotionStats.objects.get(promotion=promotion)
    assert (stats.redemptions, stats.discount_total) == (total, Decimal("10.00") * total)
    assert (
        InboxEvent.objects.filter(consumer="worker.promotions")
        .values("event_id")
        .distinct()
        .count()
        == total
    )
