"""Every worker handler applied to a batch of events in one transaction: the
same effects as one event at a time, once per event, all or nothing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from events.contracts import PURCHASE_COMPLETED, Event, unwrap, wrap
from marketplace_site.accounts.selectors import UnknownBook, UnknownCustomer
from marketplace_site.campaigns.models import DailySales, SaleLine
from marketplace_site.campaigns.services import sales_record
from marketplace_site.inbox.models import InboxEvent
from marketplace_site.inbox.services import inbox_apply_batch
from marketplace_site.notifications.services import order_confirmation_send
from marketplace_site.orders.services import order_checkout
from marketplace_site.outbox.models import OutboxMessage
from marketplace_site.promotions.models import PromotionStats
from marketplace_site.promotions.services import UnknownPromotion, promotion_stats_record
from marketplace_site.vouchers.models import PurchaseCount, Voucher, VoucherRule
from marketplace_site.vouchers.services import voucher_grant_if_due
from tests.payloads import promotion_payload, purchase_payload, republished

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _utc(settings):
    settings.TIME_ZONE = "UTC"


def purchases() -> list[Event]:
    """The PurchaseCompleted events the checkouts recorded, in order."""
    rows = OutboxMessage.objects.filter(event_type=PURCHASE_COMPLETED).order_by("id")
    return [unwrap(bytes(row.envelope)) for row in rows]


def apply(consumer: str, events: list[Event], handler) -> set[str]:
    return inbox_apply_batch(consumer=consumer, events=events, handler=handler)


def test_a_batch_adds_every_line_to_the_ledger_and_sums_each_book_day(make_user, make_book):
    dune, emma = make_book("15.00"), make_book("6.00")
    ann, bob = make_user("ann"), make_user("bob")
    order_checkout(user=ann, items={dune.pk: 2, emma.pk: 1})
    order_checkout(user=bob, items={dune.pk: 1})
    order_checkout(user=ann, items={emma.pk: 3})
    events = purchases()

    assert apply("worker.campaigns", events, sales_record) == {e.event_id for e in events}

    assert SaleLine.objects.count() == 4
    days = {row.book_id: row for row in DailySales.objects.all()}
    assert (days[dune.pk].units, days[dune.pk].revenue, days[dune.pk].orders) == (
        3,
        Decimal("45.00"),
        2,
    )
    assert (days[emma.pk].units, days[emma.pk].revenue, days[emma.pk].orders) == (
        4,
        Decimal("24.00"),
        2,
    )


def test_a_batch_adds_to_totals_committed_before_it(make_user, make_book):
    dune = make_book("15.00")
    ann = make_user("ann")
    order_checkout(user=ann, items={dune.pk: 1})
    apply("worker.campaigns", purchases(), sales_record)
    order_checkout(user=ann, items={dune.pk: 2})
    order_checkout(user=ann, items={dune.pk: 1})

    apply("worker.campaigns", purchases(), sales_record)  # the first is a redelivery

    row = DailySales.objects.get(book_id=dune.pk)
    assert (row.units, row.revenue, row.orders) == (4, Decimal("60.00"), 3)
    assert InboxEvent.objects.filter(consumer="worker.campaigns").count() == 3


def test_redelivered_events_in_a_batch_are_left_out_of_the_handlers_batch(make_user, make_book):
    dune = make_book("15.00")
    ann = make_user("ann")
    for _ in range(3):
        order_checkout(user=ann, items={dune.pk: 1})
    first, *rest = purchases()
    apply("worker.campaigns", [first], sales_record)
    seen: list[list[str]] = []

    def spy(events: list[Event]) -> None:
        seen.append([e.event_id for e in events])
        sales_record(events)

    applied = apply("worker.campaigns", [first, *rest, rest[0]], spy)

    assert applied == {e.event_id for e in rest}
    assert seen == [[e.event_id for e in rest]]
    assert DailySales.objects.get(book_id=dune.pk).units == 3


def test_a_failing_batch_records_nothing(make_user, make_book):
    dune = make_book("15.00")
    ann = make_user("ann")
    order_checkout(user=ann, items={dune.pk: 1})
    good = purchases()
    bad = unwrap(
        wrap(
            purchase_payload(order_id=999, user_id=ann.pk, lines=[(987654, 1, "1.00")]),
            correlation_id="c",
            producer="tests",
        ).SerializeToString()
    )
    with pytest.raises(UnknownBook, match="book 987654 does not exist"):
        apply("worker.campaigns", [*good, bad], sales_record)
    assert not InboxEvent.objects.exists()
    assert not SaleLine.objects.exists()
    assert not DailySales.objects.exists()


def test_the_nth_purchase_in_a_batch_earns_the_voucher_once(make_user, make_book):
    VoucherRule.objects.create(name="Third", nth_purchase=3, percent_off=Decimal("10"))
    book = make_book("10.00", stock=100)
    ann, bob = make_user("ann", email="ann@example.com"), make_user("bob")
    orders = [order_checkout(user=ann, items={book.pk: 1}) for _ in range(2)]
    apply("worker.vouchers", purchases(), voucher_grant_if_due)
    OutboxMessage.objects.all().delete()
    # Ann's third to fifth purchases and Bob's first three, interleaved, in one batch.
    for _ in range(3):
        orders.append(order_checkout(user=ann, items={book.pk: 1}))
        orders.append(order_checkout(user=bob, items={book.pk: 1}))

    apply("worker.vouchers", purchases(), voucher_grant_if_due)

    granted = {v.owner.username: v.granted_for_order_id for v in Voucher.objects.all()}
    assert granted == {"ann": orders[2].pk, "bob": orders[7].pk}
    counts = dict(PurchaseCount.objects.values_list("user__username", "purchases"))
    assert counts == {"ann": 5, "bob": 3}


def test_a_batch_naming_an_unknown_customer_counts_nothing(make_user, make_book):
    book = make_book("10.00")
    ann = make_user("ann")
    order_checkout(user=ann, items={book.pk: 1})
    ghost = unwrap(
        wrap(
            purchase_payload(order_id=998, user_id=987654, lines=[(book.pk, 1, "10.00")]),
            correlation_id="c",
            producer="tests",
        ).SerializeToString()
    )
    with pytest.raises(UnknownCustomer, match="user 987654 does not exist"):
        apply("worker.vouchers", [*purchases(), ghost], voucher_grant_if_due)
    assert not PurchaseCount.objects.exists()


def test_each_customer_in_a_batch_gets_their_own_confirmation(make_user, make_book, mailoutbox):
    book = make_book("10.00", stock=100)
    ann = make_user("ann", email="ann@example.com")
    bob = make_user("bob", email="bob@example.com")
    silent = make_user("silent", email="")
    orders = [order_checkout(user=u, items={book.pk: 1}) for u in (ann, bob, silent, ann)]

    apply("worker.emails", purchases(), order_confirmation_send)

    sent = sorted((m.to[0], m.subject) for m in mailoutbox)
    assert sent == sorted(
        [
            ("ann@example.com", f"Your order #{orders[0].pk} is confirmed"),
            ("bob@example.com", f"Your order #{orders[1].pk} is confirmed"),
            ("ann@example.com", f"Your order #{orders[3].pk} is confirmed"),
        ]
    )


def test_a_batch_of_redemptions_counts_each_promotion(make_promotion):
    first, second = make_promotion(name="First"), make_promotion(name="Second")

    orders = itertools.count(1)

    def redeemed(promotion_id: int, discount: str) -> Event:
        payload = promotion_payload(
            promotion_id=promotion_id, order_id=next(orders), discount=discount
        )
        return unwrap(wrap(payload, correlation_id="c", producer="t").SerializeToString())

    events = [redeemed(first.pk, "2.50"), redeemed(second.pk, "1.00"), redeemed(first.pk, "4.00")]
    apply("worker.promotions", events, promotion_stats_record)
    stats = {
        s.promotion_id: (s.redemptions, s.discount_total) for s in PromotionStats.objects.all()
    }
    assert stats == {first.pk: (2, Decimal("6.50")), second.pk: (1, Decimal("1.00"))}

    with pytest.raises(UnknownPromotion, match="promotion 424242 does not exist"):
        apply(
            "worker.promotions",
            [redeemed(first.pk, "1.00"), redeemed(424242, "1.00")],
            promotion_stats_record,
        )
    assert PromotionStats.objects.get(promotion=first).redemptions == 2


def test_a_batch_of_older_redemptions_committed_later_keeps_the_latest_time(make_promotion):
    """Two workers, or a requeued event: the batch holding older redemptions
    may commit last, and must not set the promotion's last use back."""
    promotion = make_promotion()
    newer, older = datetime(2026, 11, 20, 12, tzinfo=UTC), datetime(2026, 11, 20, 9, tzinfo=UTC)

    orders = itertools.count(1)

    def redeemed_at(at: datetime) -> Event:
        payload = promotion_payload(promotion_id=promotion.pk, order_id=next(orders))
        envelope = wrap(payload, correlation_id="c", producer="t", occurred_at=at)
        return unwrap(envelope.SerializeToString())

    apply("worker.promotions", [redeemed_at(newer)], promotion_stats_record)
    apply("worker.promotions", [redeemed_at(older)], promotion_stats_record)

    stats = PromotionStats.objects.get(promotion=promotion)
    assert (stats.redemptions, stats.last_redeemed_at) == (2, newer)
    apply("worker.promotions", [redeemed_at(newer + timedelta(hours=1))], promotion_stats_record)
    stats.refresh_from_db()
    assert stats.last_redeemed_at == newer + timedelta(hours=1)


def test_a_redemption_published_again_under_another_event_id_counts_once(make_promotion):
    promotion = make_promotion()
    body = wrap(
        promotion_payload(promotion_id=promotion.pk, order_id=7, discount="2.50"),
        correlation_id="c",
        producer="t",
    ).SerializeToString()
    first = unwrap(body)
    again = republished(first)
    assert apply("worker.promotions", [first, again], promotion_stats_record) == {first.event_id}
    assert apply("worker.promotions", [republished(first)], promotion_stats_record) == set()
    stats = PromotionStats.objects.get(promotion=promotion)
    assert (stats.redemptions, stats.discount_total) == (1, Decimal("2.50"))
