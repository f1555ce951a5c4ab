"""Wrapping and unwrapping envelopes: every malformed input is a MalformedEvent."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from bookstore.events.v1 import envelope_pb2, events_pb2
from events.contracts import (
    BOOK_UPSERTED,
    MAX_CLOCK_SKEW,
    ORDER_STATUS_CHANGED,
    PROMOTION_APPLIED,
    PURCHASE_COMPLETED,
    MalformedEvent,
    unwrap,
    wrap,
)
from tests.payloads import book_payload as book
from tests.payloads import promotion_payload as promotion
from tests.payloads import purchase_payload as purchase
from tests.payloads import status_payload as status


def good() -> envelope_pb2.EventEnvelope:
    return wrap(book(), correlation_id="c", producer="t")


def with_line(change) -> events_pb2.PurchaseCompleted:
    payload = purchase()
    change(payload.lines[0])
    return payload


def test_a_wrapped_event_unwraps_to_the_same_payload():
    envelope = good()
    event = unwrap(envelope.SerializeToString())
    assert (event.event_type, event.payload.book_id, event.correlation_id) == (
        BOOK_UPSERTED,
        7,
        "c",
    )
    uuid.UUID(event.event_id)


def mutate(change) -> bytes:
    envelope = good()
    change(envelope)
    return envelope.SerializeToString()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\x00garbage", "not an EventEnvelope"),
        (mutate(lambda e: e.ClearField("event_id")), "no event_id"),
        (mutate(lambda e: setattr(e, "event_id", "not-a-uuid")), "is not a UUID"),
        (mutate(lambda e: setattr(e, "schema_version", 2)), "unknown schema version 2"),
        (mutate(lambda e: setattr(e, "event_type", "catalog.deleted")), "unknown event type"),
        (
            mutate(lambda e: e.payload.Pack(events_pb2.PromotionApplied())),
            "not bookstore.events.v1.BookUpserted",
        ),
        (mutate(lambda e: setattr(e.occurred_at, "seconds", 10**15)), "occurred_at"),
    ],
)
def test_malformed_envelopes_say_what_is_wrong(body, reason):
    with pytest.raises(MalformedEvent, match=reason):
        unwrap(body)


def test_only_domain_payloads_can_be_wrapped():
    with pytest.raises(TypeError, match="not a domain event payload"):
        wrap(envelope_pb2.EventEnvelope(), correlation_id="", producer="t")


def body_of(payload, **envelope_fields) -> bytes:
    return wrap(payload, correlation_id="c", producer="t", **envelope_fields).SerializeToString()


@pytest.mark.parametrize(
    "payload",
    [
        book(),
        book(price="0.01", stock=0, active=False),
        purchase(),
        purchase(lines=((5, 1, "12.50"), (6, 20, "8.00")), discount="8.00", total="160.00"),
        # A voucher takes the total below the subtotal less the promotion's discount.
        purchase(discount="0.00", total="18.00", voucher_code="ABC"),
        purchase(lines=((5, 1, "99999999.99"),)),
        # Each line's share of the discounts: the promotion's on the free book's
        # line, the voucher's (10% of 22.00) over what the lines cost after it.
        purchase(
            lines=((5, 1, "12.00"), (6, 1, "10.00"), (7, 1, "8.00")),
            shares=(("0.00", "1.20"), ("0.00", "1.00"), ("8.00", "0.00")),
            discount="8.00",
            total="19.80",
        ),
        purchase(shares=(("0.00", "0.00"),)),
        promotion(),
        promotion(discount="0", free_book_ids=[5]),
        status(),
        status(
            status=events_pb2.ORDER_STATUS_DELIVERED,
            previous_status=events_pb2.ORDER_STATUS_SHIPPED,
        ),
        # Straight from placed to delivered (handed over in person).
        status(status=events_pb2.ORDER_STATUS_DELIVERED),
    ],
)
def test_valid_payloads_unwrap(payload):
    assert unwrap(body_of(payload)).payload == payload


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        # PurchaseCompleted: every consumer refused to apply, or applied, these differently.
        (
            with_line(lambda line: setattr(line, "quantity", -5)),
            "quantity must be 1 to 10000, got -5",
        ),
        (
            with_line(lambda line: setattr(line, "quantity", 0)),
            "quantity must be 1 to 10000, got 0",
        ),
        (
            with_line(lambda line: setattr(line, "quantity", 2_147_483_647)),
            "quantity must be 1 to 10000, got 2147483647",
        ),
        (with_line(lambda line: setattr(line, "category", 77)), "has category 77, unknown"),
        (with_line(lambda line: setattr(line, "book_id", -1)), "line 1: book_id must be > 0"),
        (purchase(order_id=-5), "order_id must be > 0, got -5"),
        (purchase(user_id=0), "order 42: user_id must be > 0, got 0"),
        (purchase(lines=()), "order 42 has no lines"),
        (purchase(lines=((5, 1, "10.00"), (5, 1, "10.00"))), "order 42 lists book 5 twice"),
        (with_line(lambda line: setattr(line, "unit_price", "-5.00")), "unit_price '-5.00' is not"),
        (
            with_line(lambda line: setattr(line, "line_total", "25.00")),
            "line_total 25.00 is not 2 x",
        ),
        (purchase(subtotal="1.00"), "subtotal 1.00 is not the sum of its lines (20.00)"),
        (purchase(total="-50.00"), "total '-50.00' is not an amount"),
        (purchase(total="25.00"), "total 25.00 is more than subtotal 20.00"),
        (purchase(discount="30.00", total="0.00"), "more than subtotal 20.00 less discount 30.00"),
        (purchase(currency=""), "currency '' is not a three-letter code"),
        (purchase(promotion_id=-1), "promotion_id must be >= 0"),
        # The lines' shares of the discounts: all of each, on every line, none past its line.
        (
            purchase(lines=((5, 1, "10.00"), (6, 1, "8.00")), shares=(("0.00", "0.00"),)),
            "order 42 line 2 (book 6) promotion_discount '' is not an amount",
        ),
        (
            purchase(shares=(("-1.00", "0.00"),), discount="0.00"),
            "line 1 (book 5) promotion_discount '-1.00' is not an amount",
        ),
        (
            purchase(shares=(("3.00", "0.00"),), discount="4.00", total="16.00"),
            "the lines' promotion_discount add up to 3.00, not the discount 4.00",
        ),
        (
            purchase(shares=(("0.00", "1.00"),), total="18.00"),
            "the lines' voucher_discount add up to 1.00, not 2.00",
        ),
        (
            purchase(
                lines=((5, 1, "10.00"), (6, 1, "8.00")),
                shares=(("0.00", "0.00"), ("8.00", "1.00")),
                discount="8.00",
                total="9.00",
            ),
            "line 2 (book 6): discounts 8.00 + 1.00 are more than its line_total 8.00",
        ),
        # PromotionApplied: amounts every consumer can store, never negative.
        (promotion(discount="-4.50"), "discount '-4.50' is not an amount"),
        (promotion(discount="123456789012345.00"), "discount '123456789012345.00' is not"),
        (promotion(discount="1.005"), "is not an amount"),
        (promotion(discount="NaN"), "'NaN' is not an amount"),
        (promotion(discount="Infinity"), "'Infinity' is not an amount"),
        (promotion(discount="1e3"), "'1e3' is not an amount"),
        (promotion(discount=""), "discount '' is not an amount"),
        (promotion(promotion_id=0), "promotion_id must be > 0"),
        (promotion(order_id=-5), "order_id must be > 0"),
        (promotion(free_book_ids=[0]), "a free book_id must be > 0"),
        # OrderStatusChanged: a status this build knows, and only forward.
        (status(order_id=0), "order_id must be > 0, got 0"),
        (status(user_id=-1), "order 42: user_id must be > 0, got -1"),
        (status(status=0), "order 42: status 0 is not a status this build knows"),
        (status(status=9), "order 42: status 9 is not a status this build knows"),
        (status(previous_status=0), "previous_status 0 is not a status this build knows"),
        (
            status(
                status=events_pb2.ORDER_STATUS_SHIPPED,
                previous_status=events_pb2.ORDER_STATUS_DELIVERED,
            ),
            "ORDER_STATUS_DELIVERED cannot move back or stay (ORDER_STATUS_SHIPPED)",
        ),
        (
            status(previous_status=events_pb2.ORDER_STATUS_SHIPPED),
            "ORDER_STATUS_SHIPPED cannot move back or stay (ORDER_STATUS_SHIPPED)",
        ),
        # BookUpserted
        (book(book_id=0), "book_id must be > 0"),
        (book(category=99), "book 7 has category 99, unknown to this build"),
        (book(price="-1.00"), "price '-1.00' is not an amount"),
        (book(stock=-3), "stock must be >= 0"),
    ],
)
def test_invalid_payloads_are_malformed_with_the_reason(payload, reason):
    with pytest.raises(MalformedEvent, match=re.escape(reason)):
        unwrap(body_of(payload))


def test_an_event_dated_in_the_future_is_malformed_beyond_the_clock_skew_allowed():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with pytest.raises(
        MalformedEvent, match=re.escape("occurred_at 9999-01-01T00:00:00+00:00 is in the future")
    ):
        unwrap(body_of(book(), occurred_at=datetime(9999, 1, 1, tzinfo=UTC)), now=now)
    with pytest.raises(MalformedEvent, match="is in the future"):
        unwrap(body_of(book(), occurred_at=now + MAX_CLOCK_SKEW + timedelta(seconds=1)), now=now)
    # A producer's clock a little ahead is no fault.
    late = now + MAX_CLOCK_SKEW
    assert unwrap(body_of(book(), occurred_at=late), now=now).occurred_at == late


def test_an_envelope_without_a_time_is_malformed():
    envelope = good()
    envelope.ClearField("occurred_at")
    with pytest.raises(MalformedEvent, match="no occurred_at"):
        unwrap(envelope.SerializeToString())


def test_purchases_and_promotions_are_keyed_by_their_order_books_by_nothing():
    assert unwrap(body_of(purchase(order_id=42))).key == "order 42"
    assert unwrap(body_of(promotion(order_id=43))).key == "order 43"
    assert unwrap(body_of(book())).key is None
    assert {unwrap(body_of(p)).event_type for p in (purchase(), promotion(), book())} == {
        PURCHASE_COMPLETED,
        PROMOTION_APPLIED,
        BOOK_UPSERTED,
    }


def test_a_status_change_is_keyed_by_its_order_and_status():
    # Each status is reached once per order: published again, it is the same fact.
    shipped = unwrap(body_of(status(order_id=42)))
    assert (shipped.event_type, shipped.key) == (
        ORDER_STATUS_CHANGED,
        "order 42 ORDER_STATUS_SHIPPED",
    )
    delivered = status(order_id=42, status=events_pb2.ORDER_STATUS_DELIVERED)
    assert unwrap(body_of(delivered)).key == "order 42 ORDER_STATUS_DELIVERED"
