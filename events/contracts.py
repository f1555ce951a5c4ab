"""Which payload each event type carries, and wrapping / unwrapping envelopes.

Producers and consumers share this module so an event type, its routing key
and its protobuf message can never disagree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import DecodeError, Message

from bookstore.events.v1 import envelope_pb2, events_pb2

SCHEMA_VERSION = 1

BOOK_UPSERTED = "catalog.book_upserted"
PURCHASE_COMPLETED = "orders.purchase_completed"
PROMOTION_APPLIED = "promotions.promotion_applied"

# event type (also the routing key) -> payload message
PAYLOAD_TYPES: dict[str, type[Message]] = {
    BOOK_UPSERTED: events_pb2.BookUpserted,
    PURCHASE_COMPLETED: events_pb2.PurchaseCompleted,
    PROMOTION_APPLIED: events_pb2.PromotionApplied,
}


class MalformedEvent(ValueError):
    """The bytes are not an event this build can apply; the message says why."""


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    event_type: str
    occurred_at: datetime
    correlation_id: str
    schema_version: int
    producer: str
    payload: Message


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


def unwrap(body: bytes) -> Event:
    """Decode and check an envelope; MalformedEvent names what is wrong."""
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
    message_type = PAYLOAD_TYPES.get(envelope.event_type)
    if message_type is None:
        raise MalformedEvent(f"unknown event type {envelope.event_type!r}")
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
    try:
        occurred_at = envelope.occurred_at.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise MalformedEvent(f"occurred_at is not a valid time: {exc}") from None
    return Event(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        occurred_at=occurred_at,
        correlation_id=envelope.correlation_id,
        schema_version=envelope.schema_version,
        producer=envelope.producer,
        payload=payload,
    )
