"""Which payload each event type carries, what makes one valid, and
wrapping / unwrapping envelopes.

Producers and consumers share this module so an event type, its routing key
and its protobuf message can never disagree, and every consumer refuses the
same events for the same reason: unwrap() checks the payload too, before any
handler sees it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar, cast

from google.protobuf.message import DecodeError, Message

from bookstore.events.v1 import envelope_pb2, events_pb2
from bookstore.recommendations.v1 import recommendations_pb2

SCHEMA_VERSION = 1
# The content type of every message carrying an envelope.
CONTENT_TYPE = "application/x-protobuf"

BOOK_UPSERTED = "catalog.book_upserted"
PURCHASE_COMPLETED = "orders.purchase_completed"
PROMOTION_APPLIED = "promotions.promotion_applied"
ORDER_STATUS_CHANGED = "orders.order_status_changed"

# Amounts are those of the marketplace's order columns (10 digits, 2 after
# the point), the narrowest a consumer stores one in: an amount any
# consumer accepts, every consumer can store.
MONEY_DIGITS = 10
MONEY_PLACES = 2
_MONEY = re.compile(rf"[0-9]{{1,{MONEY_DIGITS - MONEY_PLACES}}}(?:\.[0-9]{{1,{MONEY_PLACES}}})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
# Far above what a cart line may hold (orders.cart.MAX_QUANTITY is 20), far
# below what overflows a ledger's 32-bit count of a book's units in a day.
MAX_LINE_QUANTITY = 10_000
# How far ahead of the consumer's clock an event may be dated. Clocks of one
# deployment differ by seconds; an event dated later than this would win
# every "which change is newer" comparison against the real edits that
# follow it (a book dated 9999 could never change again), so it is refused.
MAX_CLOCK_SKEW = timedelta(minutes=5)


class MalformedEvent(ValueError):
    """The bytes are not an event this build can apply; the message says why."""


def _positive(value: int, what: str) -> None:
    if value <= 0:
        raise MalformedEvent(f"{what} must be > 0, got {value}")


def _money(value: str, what: str) -> Decimal:
    if not _MONEY.fullmatch(value):
        raise MalformedEvent(
            f"{what} {value!r} is not an amount (a decimal string of at most"
            f" {MONEY_DIGITS - MONEY_PLACES} digits and {MONEY_PLACES} places, like '12.99')"
        )
    return Decimal(value)


def is_currency_code(value: str) -> bool:
    """Three capital letters, like 'USD': what every event's currency must be."""
    return _CURRENCY.fullmatch(value) is not None


def _currency(value: str, what: str) -> None:
    if not is_currency_code(value):
        raise MalformedEvent(f"{what} currency {value!r} is not a three-letter code like 'USD'")


def book_category(code: int) -> recommendations_pb2.BookCategory:
    """``code`` as the value of a BookCategory field. Protobuf takes any int
    for an enum field; protoc's stubs name only the enum's own type."""
    return cast(recommendations_pb2.BookCategory, code)


def _category(value: int, what: str) -> None:
    if value not in recommendations_pb2.BookCategory.values():
        known = ", ".join(
            f"{name}={number}" for name, number in recommendations_pb2.BookCategory.items()
        )
        raise MalformedEvent(f"{what} has category {value}, unknown to this build (known: {known})")


def _check_book(book: events_pb2.BookUpserted) -> None:
    _positive(book.book_id, "book_id")
    what = f"book {book.book_id}"
    _category(book.category, what)
    _money(book.price, f"{what} price")
    _currency(book.currency, what)
    if book.stock < 0:
        raise MalformedEvent(f"{what}: stock must be >= 0, got {book.stock}")


def _check_purchase(order: events_pb2.PurchaseCompleted) -> None:
    _positive(order.order_id, "order_id")
    what = f"order {order.order_id}"
    _positive(order.user_id, f"{what}: user_id")
    _currency(order.currency, what)
    if order.promotion_id < 0:
        raise MalformedEvent(f"{what}: promotion_id must be >= 0, got {order.promotion_id}")
    if not order.lines:
        raise MalformedEvent(f"{what} has no lines")
    books: set[int] = set()
    subtotal = Decimal(0)
    for number, line in enumerate(order.lines, start=1):
        where = f"{what} line {number}"
        _positive(line.book_id, f"{where}: book_id")
        where = f"{where} (book {line.book_id})"
        if line.book_id in books:
            raise MalformedEvent(f"{what} lists book {line.book_id} twice")
        books.add(line.book_id)
        _category(line.category, where)
        if not 1 <= line.quantity <= MAX_LINE_QUANTITY:
            raise MalformedEvent(
                f"{where}: quantity must be 1 to {MAX_LINE_QUANTITY}, got {line.quantity}"
            )
        unit_price = _money(line.unit_price, f"{where} unit_price")
        line_total = _money(line.line_total, f"{where} line_total")
        if line_total != unit_price * line.quantity:
            raise MalformedEvent(
                f"{where}: line_total {line.line_total} is not {line.quantity} x {line.unit_price}"
            )
        subtotal += line_total
    if _money(order.subtotal, f"{what} subtotal") != subtotal:
        raise MalformedEvent(
            f"{what}: subtotal {order.subtotal} is not the sum of its lines ({subtotal})"
        )
    discount = _money(order.discount, f"{what} discount")
    total = _money(order.total, f"{what} total")
    # The total is less still when a voucher was used; never more.
    if discount > subtotal or total > subtotal - discount:
        raise MalformedEvent(
            f"{what}: total {order.total} is more than subtotal {order.subtotal}"
            f" less discount {order.discount}"
        )
    _check_discount_shares(order, what, voucher=subtotal - discount - total)


def _check_discount_shares(
    order: events_pb2.PurchaseCompleted, what: str, *, voucher: Decimal
) -> None:
    """Each line's share of the discounts, when the producer sent them: all
    of both discounts, none over its line. An event without them (from a
    producer older than the fields) is valid: the consumer shares them out."""
    if not carries_discount_shares(order):
        return
    promotion_shares = voucher_shares = Decimal(0)
    for number, line in enumerate(order.lines, start=1):
        where = f"{what} line {number} (book {line.book_id})"
        promotion_share = _money(line.promotion_discount, f"{where} promotion_discount")
        voucher_share = _money(line.voucher_discount, f"{where} voucher_discount")
        if promotion_share + voucher_share > Decimal(line.line_total):
            raise MalformedEvent(
                f"{where}: discounts {line.promotion_discount} + {line.voucher_discount}"
                f" are more than its line_total {line.line_total}"
            )
        promotion_shares += promotion_share
        voucher_shares += voucher_share
    if promotion_shares != Decimal(order.discount):
        raise MalformedEvent(
            f"{what}: the lines' promotion_discount add up to {promotion_shares},"
            f" not the discount {order.discount}"
        )
    if voucher_shares != voucher:
        raise MalformedEvent(
            f"{what}: the lines' voucher_discount add up to {voucher_shares}, not {voucher}"
            f" (subtotal less discount less total)"
        )


def carries_discount_shares(order: events_pb2.PurchaseCompleted) -> bool:
    """Whether the producer shared the order's discounts out to its lines
    (every producer since the fields were added does, with "0.00" at least)."""
    return any(line.promotion_discount or line.voucher_discount for line in order.lines)


def _check_promotion(applied: events_pb2.PromotionApplied) -> None:
    _positive(applied.promotion_id, "promotion_id")
    what = f"promotion {applied.promotion_id}"
    _positive(applied.order_id, f"{what}: order_id")
    _positive(applied.user_id, f"{what}: user_id")
    _money(applied.discount, f"{what} discount")
    _currency(applied.currency, what)
    for book_id in applied.free_book_ids:
        _positive(book_id, f"{what}: a free book_id")


def _check_status_change(change: events_pb2.OrderStatusChanged) -> None:
    _positive(change.order_id, "order_id")
    what = f"order {change.order_id}"
    _positive(change.user_id, f"{what}: user_id")
    names = events_pb2.OrderStatus
    for field, value in (("status", change.status), ("previous_status", change.previous_status)):
        if value not in names.values() or value == events_pb2.ORDER_STATUS_UNSPECIFIED:
            raise MalformedEvent(f"{what}: {field} {value} is not a status this build knows")
    # Statuses only move forward, and their numbers follow their order.
    if change.status <= change.previous_status:
        raise MalformedEvent(
            f"{what}: {names.Name(change.previous_status)} cannot move back or stay"
            f" ({names.Name(change.status)})"
        )


P = TypeVar("P", bound=Message)


def _per_order(payload: events_pb2.PurchaseCompleted | events_pb2.PromotionApplied) -> str:
    return f"order {payload.order_id}"


def _per_order_status(payload: events_pb2.OrderStatusChanged) -> str:
    # Each status is reached once per order: published again, still one e-mail.
    return f"order {payload.order_id} {events_pb2.OrderStatus.Name(payload.status)}"


@dataclass(frozen=True, slots=True)
class Contract(Generic[P]):
    payload: type[P]
    # Raises MalformedEvent saying what is wrong with a payload.
    check: Callable[[P], None]
    # What an event is a fact about, when one fact must count once even if
    # it is published again under another event id (a purchase is one order).
    key: Callable[[P], str] | None = None


# event type (also the routing key) -> its contract; each entry is checked
# against its own payload type, the table holds them all (hence Any).
CONTRACTS: dict[str, Contract[Any]] = {
    BOOK_UPSERTED: Contract(events_pb2.BookUpserted, _check_book),
    PURCHASE_COMPLETED: Contract(events_pb2.PurchaseCompleted, _check_purchase, _per_order),
    PROMOTION_APPLIED: Contract(events_pb2.PromotionApplied, _check_promotion, _per_order),
    ORDER_STATUS_CHANGED: Contract(
        events_pb2.OrderStatusChanged, _check_status_change, _per_order_status
    ),
}
PAYLOAD_TYPES: dict[str, type[Message]] = {t: c.payload for t, c in CONTRACTS.items()}


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    event_type: str
    occurred_at: datetime
    correlation_id: str
    schema_version: int
    producer: str
    payload: Message
    # The contract's key of the fact, e.g. "order 42"; None for a type without one.
    key: str | None = None


def payload_as(event: Event, kind: type[P]) -> P:
    """The event's payload as ``kind``, the message its event type carries: a
    handler names the type it was given. TypeError if it was given another."""
    if not isinstance(event.payload, kind):
        raise TypeError(
            f"{event.event_type} event {event.event_id} carries"
            f" {type(event.payload).__name__}, not {kind.__name__}"
        )
    return event.payload


def event_type_of(payload: Message) -> str:
    for event_type, message_type in PAYLOAD_TYPES.items():
        if isinstance(payload, message_type):
            return event_type
    raise TypeError(f"{type(payload).__name__} is not a domain event payload")


def wrap(
    payload: Message,
    *,
    correlation_id: str,
    producer: str,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> envelope_pb2.EventEnvelope:
    envelope = envelope_pb2.EventEnvelope(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event_type_of(payload),
        correlation_id=correlation_id,
        schema_version=SCHEMA_VERSION,
        producer=producer,
    )
    envelope.occurred_at.FromDatetime(occurred_at or datetime.now(UTC))
    envelope.payload.Pack(payload)
    return envelope


def unwrap(body: bytes, *, now: datetime | None = None) -> Event:
    """Decode and check an envelope and its payload; MalformedEvent names
    what is wrong. ``now`` is the consumer's clock, for the date's check."""
    if not isinstance(body, bytes | bytearray | memoryview):
        # py-amqp decodes a body whose content_encoding names a text codec.
        raise MalformedEvent(
            f"the body is {type(body).__name__}, not bytes: an envelope is binary"
            " (published with a text content_encoding?)"
        )
    try:
        envelope = envelope_pb2.EventEnvelope.FromString(body)
    except DecodeError as exc:
        raise MalformedEvent(f"not an EventEnvelope: {exc}") from None
    if not envelope.event_id:
        raise MalformedEvent("the envelope has no event_id")
    try:
        uuid.UUID(envelope.event_id)
    except ValueError:
        raise MalformedEvent(f"event_id {envelope.event_id!r} is not a UUID") from None
    if envelope.schema_version != SCHEMA_VERSION:
        raise MalformedEvent(
            f"unknown schema version {envelope.schema_version} (this build reads {SCHEMA_VERSION})"
        )
    contract = CONTRACTS.get(envelope.event_type)
    if contract is None:
        raise MalformedEvent(f"unknown event type {envelope.event_type!r}")
    message_type = contract.payload
    payload = message_type()
    try:
        unpacked = envelope.payload.Unpack(payload)
    except DecodeError as exc:
        raise MalformedEvent(f"{envelope.event_type} payload does not decode: {exc}") from None
    if not unpacked:
        raise MalformedEvent(
            f"{envelope.event_type} carries {envelope.payload.type_url or 'no payload'}, "
            f"not {message_type.DESCRIPTOR.full_name}"
        )
    if not envelope.HasField("occurred_at"):
        raise MalformedEvent("the envelope has no occurred_at")
    try:
        occurred_at = envelope.occurred_at.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise MalformedEvent(f"occurred_at is not a valid time: {exc}") from None
    latest = (now or datetime.now(UTC)) + MAX_CLOCK_SKEW
    if occurred_at > latest:
        raise MalformedEvent(
            f"occurred_at {occurred_at.isoformat()} is in the future (this consumer's clock"
            f" allows up to {latest.isoformat(timespec='seconds')})"
        )
    contract.check(payload)
    return Event(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        occurred_at=occurred_at,
        correlation_id=envelope.correlation_id,
        schema_version=envelope.schema_version,
        producer=envelope.producer,
        payload=payload,
        key=contract.key(payload) if contract.key else None,
    )
