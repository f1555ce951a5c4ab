"""The worker's database connection dropped under it (a restart, a failover):
the batch in flight fails and is requeued, not parked; the next one
reconnects (Django drops a connection whose rollback failed)."""

from __future__ import annotations

import itertools

import psycopg
import pytest
from django.db import connection

from events.consuming import Action, Decision, Delivery, EventQueue, Handler
from events.contracts import wrap
from marketplace_site.event_handlers import _apply_batch, worker_handlers
from marketplace_site.promotions.models import PromotionStats
from tests.payloads import promotion_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


_orders = itertools.count(1)


def redeemed(promotion_id: int) -> Delivery:
    payload = promotion_payload(promotion_id=promotion_id, order_id=next(_orders), discount="1.00")
    return Delivery(wrap(payload, correlation_id="c", producer="t").SerializeToString())


def drop_this_connection() -> None:
    """What a database restart does to the worker's session."""
    pid = connection.cursor().connection.info.backend_pid
    settings = connection.settings_dict
    dsn = f"host={settings['HOST']} port={settings['PORT'] or 5432} user={settings['USER']}"
    with psycopg.connect(f"{dsn} dbname={settings['NAME']}", autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def apply(*deliveries: Delivery) -> list[Decision]:
    queue: EventQueue[Handler, Delivery] = EventQueue(
        consumer="worker.promotions",
        queue="worker.promotions",
        handlers=worker_handlers()["worker.promotions"],
        apply_batch=_apply_batch,
        delivery_limit=5,
    )
    return queue.decide(deliveries)


def test_after_the_connection_drops_the_next_batch_reconnects_and_applies(make_promotion):
    promotion = make_promotion()
    assert [o.result for o in apply(redeemed(promotion.pk))] == ["applied"]

    drop_this_connection()
    lost = redeemed(promotion.pk)
    [first_try] = apply(lost)
    assert first_try.action is Action.REQUEUE  # not applied, and not parked either

    [again] = apply(lost)
    assert again.result == "applied"
    assert PromotionStats.objects.get(promotion=promotion).redemptions == 2
