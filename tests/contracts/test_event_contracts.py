"""Wrapping and unwrapping envelopes: every malformed input is a MalformedEvent."""

from __future__ import annotations

import uuid

import pytest

from bookstore.events.v1 import envelope_pb2, events_pb2
from events.contracts import BOOK_UPSERTED, MalformedEvent, unwrap, wrap


def good() -> envelope_pb2.EventEnvelope:
    return wrap(events_pb2.BookUpserted(book_id=7, title="Dune"), correlation_id="c", producer="t")


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
