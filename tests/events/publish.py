"""Publishing envelopes straight to the exchange, as the relay would."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message as ProtoMessage
from kombu import Exchange, Producer

from events.contracts import wrap
from events.topology import Topology
from tests.events.broker import connection


def envelope_bytes(payload: ProtoMessage, *, event_id: str | None = None) -> bytes:
    return wrap(
        payload, correlation_id="test-corr", producer="tests", event_id=event_id
    ).SerializeToString()


def publish(topology: Topology, routing_key: str, *bodies: bytes, **properties: Any) -> None:
    """Each body as the relay sends it; ``properties`` (type, message_id) override its own."""
    exchange = Exchange(topology.exchange, "topic", durable=True)
    with connection() as conn:
        options = conn.transport_options
        assert options is not None  # kombu keeps {} when given none
        options["confirm_publish"] = True
        producer = Producer(conn.channel(), exchange=exchange)
        for body in bodies:
            producer.publish(
                body,
                routing_key=routing_key,
                content_type="application/x-protobuf",
                content_encoding="binary",
                delivery_mode=2,
                declare=[exchange],
                **properties,
            )
