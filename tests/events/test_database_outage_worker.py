"""A real worker cut off from a real PostgreSQL for seconds, events arriving
all the while: none is parked, each is applied once when the database is back.

Before the worker held its batches, every event in its prefetch window went
through EVENTS_DELIVERY_LIMIT requeues within a second of the cut, and was
parked.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection

from events.contracts import PROMOTION_APPLIED
from marketplace_site.inbox.models import InboxEvent
from marketplace_site.promotions.models import PromotionStats
from tests.events.broker import message_count, wait_until
from tests.events.publish import envelope_bytes, publish
from tests.faults.proxy import TcpProxy
from tests.payloads import promotion_payload
from tests.processes import celery_worker, child_env

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def redemptions(promotion) -> int:
    row = PromotionStats.objects.filter(promotion=promotion).first()
    return row.redemptions if row else 0


def applied(promotion_id: int, orders: range) -> list[bytes]:
    """A redemption per order (one order counts once)."""
    return [
        envelope_bytes(promotion_payload(promotion_id=promotion_id, order_id=i, discount="1.00"))
        for i in orders
    ]


def test_a_worker_cut_off_from_its_database_holds_its_events_and_parks_none(
    topology, make_promotion
):
    promotion = make_promotion()
    db = connection.settings_dict
    upstream = (db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    dead_letters = topology.queue("worker.promotions").dead_letter_queue
    with TcpProxy(upstream) as proxy:
        url = f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}"
        worker = celery_worker(child_env(DATABASE_URL=url))
        try:
            worker.wait_for_output(" ready.", timeout=60)
            publish(topology, PROMOTION_APPLIED, *applied(promotion.pk, range(1, 21)))
            wait_until(lambda: redemptions(promotion) == 20, what="the first 20 applied")

            proxy.cut()
            publish(topology, PROMOTION_APPLIED, *applied(promotion.pk, range(21, 51)))
            worker.wait_for_output("worker.promotions: a dependency is unavailable", timeout=20)
            time.sleep(3)  # several tries: each used to cost every held event a delivery
            assert message_count(dead_letters) == 0
            assert redemptions(promotion) == 20

            proxy.reopen()
            wait_until(lambda: redemptions(promotion) == 50, timeout=60, what="all 50 applied")
            worker.wait_for_output("worker.promotions: back; applying", timeout=5)
        finally:
            worker.stop()
    assert message_count(dead_letters) == 0
    assert InboxEvent.objects.filter(consumer="worker.promotions").count() == 50
    assert "result=failed" not in worker.text()
