"""The contracts in protos/: fresh, importable, and wire-compatible with the tutorial."""

from __future__ import annotations

import subprocess
import sys

import pytest
from google.protobuf.descriptor import FieldDescriptor

from bookstore.events.v1 import envelope_pb2, events_pb2
from bookstore.legacy import recommendations_pb2 as legacy
from bookstore.recommendations.v1 import recommendations_pb2 as v1
from recommender.config import REPO_ROOT
from recommender.engine import Category


def test_generated_code_matches_the_protos():
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "protos" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"stale generated code (run `make protos`):\n{result.stderr}"


def test_generated_packages_import_from_anywhere(tmp_path):
    # No sys.path edits: the installed project maps the package to protos/.
    code = (
        "import bookstore.recommendations.v1.recommendations_pb2_grpc, "
        "bookstore.events.v1.events_pb2, bookstore.legacy.recommendations_pb2"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)


def _fields(message) -> dict[str, tuple[int, int]]:
    return {f.name: (f.number, f.type) for f in message.DESCRIPTOR.fields}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "RecommendationRequest",
            {
                "user_id": (1, FieldDescriptor.TYPE_INT32),
                "category": (2, FieldDescriptor.TYPE_ENUM),
                "max_results": (3, FieldDescriptor.TYPE_INT32),
            },
        ),
        (
            "BookRecommendation",
            {"id": (1, FieldDescriptor.TYPE_INT32), "title": (2, FieldDescriptor.TYPE_STRING)},
        ),
        ("RecommendationResponse", {"recommendations": (1, FieldDescriptor.TYPE_MESSAGE)}),
    ],
)
def test_v1_keeps_the_tutorial_field_numbers(message, expected):
    tutorial = _fields(getattr(legacy, message))
    assert tutorial == expected
    current = _fields(getattr(v1, message))
    assert {name: current[name] for name in expected} == expected


def test_v1_keeps_the_tutorial_categories():
    for value in legacy.BookCategory.DESCRIPTOR.values:
        assert v1.BookCategory.Value(value.name) == value.number
    assert [v1.MYSTERY, v1.SCIENCE_FICTION, v1.SELF_HELP] == [0, 1, 2]


def test_tutorial_messages_decode_v1_bytes_and_back():
    reply = v1.RecommendationResponse(
        recommendations=[v1.BookRecommendation(id=7, title="Dune", author="Frank Herbert")]
    )
    old = legacy.RecommendationResponse.FromString(reply.SerializeToString())
    assert [(b.id, b.title) for b in old.recommendations] == [(7, "Dune")]
    request = legacy.RecommendationRequest(user_id=3, category=legacy.SELF_HELP, max_results=4)
    assert v1.RecommendationRequest.FromString(request.SerializeToString()) == (
        v1.RecommendationRequest(user_id=3, category=v1.SELF_HELP, max_results=4)
    )


def test_engine_categories_mirror_the_proto_enum():
    assert {c.name: c.value for c in Category} == dict(v1.BookCategory.items())


def test_an_event_round_trips_through_its_envelope():
    purchase = events_pb2.PurchaseCompleted(
        order_id=12,
        user_id=3,
        lines=[
            events_pb2.PurchaseLine(
                book_id=5, quantity=2, unit_price="9.99", line_total="19.98", category=v1.FANTASY
            )
        ],
        total="19.98",
        currency="USD",
    )
    envelope = envelope_pb2.EventEnvelope(
        event_id="5d0f2c1e-0000-4000-8000-000000000001",
        event_type="orders.purchase_completed",
        correlation_id="req-1",
        schema_version=1,
        producer="marketplace",
    )
    envelope.occurred_at.GetCurrentTime()
    envelope.payload.Pack(purchase)
    decoded = envelope_pb2.EventEnvelope.FromString(envelope.SerializeToString())
    assert decoded.payload.Is(events_pb2.PurchaseCompleted.DESCRIPTOR)
    assert not decoded.payload.Is(events_pb2.BookUpserted.DESCRIPTOR)
    unpacked = events_pb2.PurchaseCompleted()
    assert decoded.payload.Unpack(unpacked)
    assert unpacked == purchase
