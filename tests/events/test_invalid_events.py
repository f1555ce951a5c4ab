"""Events the contract refuses, through a real Celery worker on the real RabbitMQ:
every queue parks them alike, with the reason, and applies nothing.
(The recommender's queue: tests/recommender/test_events_consumer.py.)"""

from __future__ import annotations

from decimal import Decimal

import pytest

from events.contracts import PROMOTION_APPLIED, PURCHASE_COMPLETED, unwrap
from events.dead_letters import CONSUMER_HEADER, REASON_HEADER
from marketplace_site.campaigns.models import DailySales, SaleLine
from marketplace_site.inbox.models import InboxEvent
from marketplace_site.vouchers.models import PurchaseCount, Voucher
from tests.events.broker import take, wait_until
from tests.events.publish import envelope_bytes, publish
from tests.events.test_worker import stats
from tests.payloads import promotion_payload, purchase_payload

pytestmark = pytest.mark.django_db(transaction=True)

PURCHASE_QUEUES = ("worker.campaigns", "worker.emails", "worker.vouchers")


@pytest.fixture
def worker(mail_worker):
    return mail_worker


def parked_reasons(topology, consumer: str, expected: int) -> dict[bytes, str]:
    parked = take(topology.queue(consumer).dead_letter_queue, expected=expected)
    assert {m.headers[CONSUMER_HEADER] for m in parked} == {consumer}
    return {m.body: m.headers[REASON_HEADER] for m in parked}


def test_invalid_purchases_are_parked_with_the_reason_in_every_queue_and_change_nothing(
    worker, topology, mail_dir, customer, make_book, make_rule
):
    make_rule(nth_purchase=1)  # any purchase counted would earn a voucher
    book = make_book("10.00")

    def order(order_id: int, quantity: int = 1, **fields) -> bytes:
        payload = purchase_payload(
            order_id=order_id, user_id=customer.pk, lines=[(book.pk, quantity, "10.00")]
        )
        for name, value in fields.items():
            setattr(payload.lines[0], name, value)
        return envelope_bytes(payload)

    # The payloads of issue 20, and the contract's reason for each.
    refused = {
        order(1, quantity=-5, line_total="-50.00"): "quantity must be 1 to 10000, got -5",
        order(2, category=77): "line 1 (book {book}) has category 77, unknown to this build",
        order(-5): "order_id must be > 0, got -5",
        envelope_bytes(purchase_payload(order_id=3, user_id=customer.pk, lines=[])): (
            "order 3 has no lines"
        ),
        order(4, quantity=2_147_483_647): "quantity must be 1 to 10000, got 2147483647",
    }
    # Well formed, but naming a customer or a book this shop does not have, or in
    # another currency: retried (a database's or a setting's answer), then parked.
    unknown = {
        envelope_bytes(
            purchase_payload(order_id=5, user_id=987654, lines=[(book.pk, 1, "10.00")])
        ): "failed: UnknownCustomer: user 987654 does not exist",
        envelope_bytes(
            purchase_payload(order_id=6, user_id=customer.pk, lines=[(987654, 1, "10.00")])
        ): "failed: UnknownBook: book 987654 does not exist",
    }
    foreign = purchase_payload(
        order_id=7, user_id=customer.pk, lines=[(book.pk, 1, "10.00")], currency="EUR"
    )
    foreign_body = envelope_bytes(foreign)
    unknown[foreign_body] = (
        f"failed: ForeignCurrency: orders.purchase_completed "
        f"{unwrap(foreign_body).event_id} is in EUR; this shop counts in USD"
    )
    publish(topology, PURCHASE_COMPLETED, *refused, *unknown)

    for consumer in PURCHASE_QUEUES:
        reasons = parked_reasons(topology, consumer, len(refused) + len(unknown))
        assert reasons.keys() == refused.keys() | unknown.keys(), consumer
        for body, reason in refused.items():
            assert reasons[body].startswith("malformed: "), (consumer, reasons[body])
            assert reason.format(book=book.pk) in reasons[body], (consumer, reasons[body])
        for body, reason in unknown.items():
            assert reasons[body] == reason, consumer
    assert not SaleLine.objects.exists()
    assert not DailySales.objects.exists()
    assert not PurchaseCount.objects.exists()
    assert not Voucher.objects.exists()
    assert not InboxEvent.objects.exists()
    assert not mail_dir.exists() or not list(mail_dir.iterdir())


def test_invalid_discounts_are_parked_with_the_reason_and_count_nothing(
    worker, topology, make_promotion
):
    promotion = make_promotion()

    def applied(order_id: int, discount: str) -> bytes:
        return envelope_bytes(
            promotion_payload(promotion_id=promotion.pk, order_id=order_id, discount=discount)
        )

    refused = {
        applied(1, "-4.50"): "discount '-4.50' is not an amount",
        applied(2, "123456789012345678.00"): "discount '123456789012345678.00' is not an amount",
        applied(3, "NaN"): "discount 'NaN' is not an amount",
    }
    publish(topology, PROMOTION_APPLIED, *refused, applied(4, "2.50"))

    reasons = parked_reasons(topology, "worker.promotions", len(refused))
    assert reasons.keys() == refused.keys()
    for body, reason in refused.items():
        assert reasons[body].startswith("malformed: ")
        assert reason in reasons[body]
    wait_until(lambda: stats(promotion) == (1, Decimal("2.50")), what="the good one counted")
    assert stats(promotion) == (1, Decimal("2.50"))
