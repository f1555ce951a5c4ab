"""One checkout through the site, followed through every process of the pipeline.

site (test client) -> outbox -> relay -> RabbitMQ -> Celery worker (promotions,
campaigns, e-mails, vouchers) and the recommender, which then recommends
differently. Every process is real and started as `make run` starts it.
"""

from __future__ import annotations

from decimal import Decimal

import grpc
import pytest

from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from events.contracts import book_category
from marketplace_site.campaigns.models import SaleLine
from marketplace_site.catalog.services import book_publish_all
from marketplace_site.inbox.models import InboxEvent
from marketplace_site.orders.models import Order
from marketplace_site.orders.services import order_checkout
from marketplace_site.promotions.models import PromotionStats
from marketplace_site.vouchers.models import Voucher, VoucherRule
from tests.events.broker import wait_until
from tests.processes import start_pipeline

pytestmark = pytest.mark.django_db(transaction=True)


def recommend(target: str, user_id: int, category: int) -> list[tuple[int, int]]:
    with grpc.insecure_channel(target) as channel:
        reply = pb_grpc.RecommendationsStub(channel).Recommend(
            pb.RecommendationRequest(
                user_id=user_id, category=book_category(category), max_results=50
            ),
            timeout=5,
        )
    return [(r.id, r.reason) for r in reply.recommendations]


def test_a_checkout_reaches_every_consumer_and_changes_recommendations(
    client, topology, tmp_path, make_book, make_user, make_promotion
):
    x, y, z = (make_book(price, category="fantasy") for price in ("12.00", "15.00", "9.00"))
    promotion = make_promotion()
    VoucherRule.objects.create(name="Welcome back", nth_purchase=1, percent_off=Decimal("10"))
    alice, bob = make_user("alice"), make_user("bob")
    mail = tmp_path / "mail"
    pipeline = start_pipeline(tmp_path)
    target, worker = pipeline.target, pipeline.worker
    try:
        # The recommender learns the shop's catalog from events, not its tables.
        book_publish_all()
        wait_until(
            lambda: {x.pk, y.pk, z.pk} <= {b for b, _ in recommend(target, 0, pb.FANTASY)},
            what="the recommender to learn the books",
        )

        client.force_login(alice)
        for book in (x, y, z):
            assert client.post(f"/cart/add/{book.pk}/", {"quantity": 1}).status_code == 302
        response = client.post("/checkout/", {"expected_total": "27.00"})
        assert response.status_code == 302, response.content
        order = Order.objects.get(user=alice)
        assert (order.discount, order.total) == (Decimal("9.00"), Decimal("27.00"))

        consumers = {"worker.promotions", "worker.campaigns", "worker.emails", "worker.vouchers"}
        wait_until(
            lambda: set(InboxEvent.objects.values_list("consumer", flat=True)) >= consumers,
            what="every worker consumer to apply the checkout",
        )
        stats = PromotionStats.objects.get(promotion=promotion)
        assert (stats.redemptions, stats.discount_total) == (1, Decimal("9.00"))
        assert SaleLine.objects.filter(order_id=order.pk).count() == 3
        voucher = Voucher.objects.get(owner=alice)
        sent = "\n".join(p.read_text() for p in mail.iterdir())
        assert f"Order #{order.pk}" in sent or f"order #{order.pk}" in sent.lower()
        assert voucher.code in sent

        # Bob buys only X: alice bought X with Y and Z, so those come first for him.
        order_checkout(user=bob, items={x.pk: 1})
        wait_until(
            lambda: (
                recommend(target, bob.pk, pb.FANTASY)[:2]
                and all(
                    r == pb.BOUGHT_TOGETHER for _, r in recommend(target, bob.pk, pb.FANTASY)[:2]
                )
            ),
            what="bob's recommendations to follow alice's basket",
        )
        assert {b for b, _ in recommend(target, bob.pk, pb.FANTASY)[:2]} == {y.pk, z.pk}
        # One correlation id follows the purchase from the site into the worker.
        assert order.correlation_id
        assert order.correlation_id in worker.text()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{pipeline.logs()}") from None
    finally:
        pipeline.stop()
