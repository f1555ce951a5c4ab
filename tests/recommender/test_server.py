"""The v1 API over a real server on port 0: answers, status codes, health, reflection."""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from recommender.server import start_server
from tests.grpc_server import ServerThread
from tests.tracing import within

SF = pb.SCIENCE_FICTION


def request(**fields) -> pb.RecommendationRequest:
    return pb.RecommendationRequest(**fields)


def test_recommend_returns_books_with_their_details(server):
    response = server.stub.Recommend(request(user_id=3, category=SF, max_results=5), timeout=5)
    assert [(r.id, r.title, r.author) for r in response.recommendations] == [
        (6, "Neuromancer", "William Gibson"),
        (7, "The Left Hand of Darkness", "Ursula K. Le Guin"),
    ]
    assert {r.category for r in response.recommendations} == {SF}
    assert [r.reason for r in response.recommendations] == [pb.BOUGHT_TOGETHER, pb.CATALOG]
    # What a page needs to say why: the user's own purchase it goes with.
    assert [(r.bought_with_id, r.bought_with_title) for r in response.recommendations] == [
        (5, "Dune"),
        (0, ""),
    ]


def test_stream_answers_each_request_in_order(server):
    requests = [
        request(user_id=0, category=SF, max_results=1),
        request(user_id=0, category=pb.MYSTERY, max_results=2),
        request(user_id=1, category=SF, max_results=5),
        request(user_id=0, category=pb.BIOGRAPHY, max_results=5),
    ]
    responses = list(server.stub.RecommendStream(iter(requests), timeout=5))
    assert [[r.id for r in resp.recommendations] for resp in responses] == [[5], [3, 1], [7], []]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"category": SF, "max_results": -1}, "max_results must be >= 0, got -1"),
        ({"category": 99, "max_results": 5}, "unknown category 99"),
        ({"user_id": -1, "category": SF}, "user_id must be >= 0"),
    ],
)
def test_bad_input_is_invalid_argument_with_a_message(server, fields, message):
    with pytest.raises(grpc.RpcError) as error:
        server.stub.Recommend(request(**fields), timeout=5)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details()


def test_a_bad_request_ends_the_stream_naming_its_position_counted_from_one(server):
    requests = [request(category=SF), request(category=SF, max_results=-5), request(category=SF)]
    call = server.stub.RecommendStream(iter(requests), timeout=5)
    first = next(call)
    assert [r.id for r in first.recommendations] == [5, 6, 7]
    with pytest.raises(grpc.RpcError) as error:
        next(call)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    # The second request: counted from 1, as the person reading it counts.
    assert "request #2: max_results must be >= 0" in error.value.details()


def test_max_results_zero_gives_the_default_count(server):
    response = server.stub.Recommend(request(category=pb.MYSTERY), timeout=5)
    assert len(response.recommendations) == 4  # the whole (small) category, under 10


def test_health_is_serving_for_every_service(server):
    stub = health_pb2_grpc.HealthStub(server.channel)
    for service in ("", "bookstore.recommendations.v1.Recommendations", "Recommendations"):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_while_loading_health_is_not_serving_and_calls_are_unavailable(loading_server):
    stub = health_pb2_grpc.HealthStub(loading_server.channel)
    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == (
        health_pb2.HealthCheckResponse.NOT_SERVING
    )
    with pytest.raises(grpc.RpcError) as error:
        loading_server.stub.Recommend(request(category=SF), timeout=5)
    assert error.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "loading" in error.value.details()


def test_reflection_describes_the_api(server):
    db = ProtoReflectionDescriptorDatabase(server.channel)
    services = set(db.get_services())
    assert {
        "bookstore.recommendations.v1.Recommendations",
        "Recommendations",
        "grpc.health.v1.Health",
    } <= services
    from google.protobuf.descriptor_pool import DescriptorPool

    pool = DescriptorPool(db)
    service = pool.FindServiceByName("bookstore.recommendations.v1.Recommendations")
    assert {m.name for m in service.methods} == {"Recommend", "RecommendStream"}
    method = service.methods_by_name["RecommendStream"]
    assert method.client_streaming
    assert method.server_streaming


TRACE_42, TRACE_7 = "4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c"


def in_trace(trace_id: str) -> AbstractContextManager[None]:
    """Calls made in the block are in the caller's trace ``trace_id``."""
    return within({"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})


def logged_calls(caplog, count: int) -> list[logging.LogRecord]:
    """The access log's records once ``count`` are in (the server logs as a call
    ends, which may be just after the client hears back), and no more."""
    deadline = time.monotonic() + 5
    while len(access_records(caplog)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # room for a wrong, second line about the same call
    return access_records(caplog)


def access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "recommender.access"]


def test_failed_calls_have_their_line_and_answered_ones_only_in_debug(server, caplog):
    """By default (RECOMMENDER_ACCESS_LOG=problems) a line per call costs no
    throughput: the calls answered quickly are DEBUG lines."""
    caplog.set_level(logging.DEBUG, logger="recommender.access")
    with in_trace(TRACE_42):
        server.stub.Recommend(request(category=SF), timeout=5)
    with pytest.raises(grpc.RpcError):
        server.stub.Recommend(request(category=77), timeout=5)
    ok, bad = logged_calls(caplog, 2)
    assert ok.levelno == logging.DEBUG
    assert "method=/bookstore.recommendations.v1.Recommendations/Recommend" in ok.getMessage()
    assert "code=OK" in ok.getMessage()
    assert ok.trace_id == TRACE_42  # the caller's trace
    assert "peer=ipv" in ok.getMessage()
    assert "duration_ms=" in ok.getMessage()
    assert bad.levelno == logging.INFO
    assert "code=INVALID_ARGUMENT" in bad.getMessage()
    assert bad.trace_id not in (TRACE_42, "-")  # a trace of its own


@pytest.fixture
def logging_server(index):
    """A server that logs every call, and counts any from 0 ms as slow."""

    def start(**options) -> pb_grpc.RecommendationsStub:
        running = thread.run(start_server(listen="127.0.0.1:0", index=index, **options))
        servers.append(running)
        channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        channels.append(channel)
        return pb_grpc.RecommendationsStub(channel)

    thread, servers, channels = ServerThread(), [], []
    yield start
    for channel in channels:
        channel.close()
    for running in servers:
        thread.run(running.server.stop(None))
    thread.close()


def test_every_call_has_its_line_where_the_operator_asks(logging_server, caplog):
    caplog.set_level(logging.INFO, logger="recommender.access")
    stub = logging_server(access_log="every")
    with in_trace(TRACE_7):
        stub.Recommend(request(category=SF), timeout=5)
    [line] = logged_calls(caplog, 1)
    assert "code=OK" in line.getMessage()
    assert line.trace_id == TRACE_7


def test_a_slow_call_has_its_line_marked_slow(logging_server, caplog):
    caplog.set_level(logging.INFO, logger="recommender.access")
    stub = logging_server(slow_call_seconds=0.0)
    stub.Recommend(request(category=SF), timeout=5)
    [line] = logged_calls(caplog, 1)
    assert line.getMessage().endswith(" slow")
    assert "code=OK" in line.getMessage()


def test_rpc_latency_is_measured_by_method_and_code(server):
    from prometheus_client import REGISTRY

    labels = {"method": "/bookstore.recommendations.v1.Recommendations/Recommend"}

    def count(code: str) -> float:
        return (
            REGISTRY.get_sample_value("recommender_rpc_seconds_count", {**labels, "code": code})
            or 0
        )

    ok, bad = count("OK"), count("INVALID_ARGUMENT")
    server.stub.Recommend(request(category=SF), timeout=5)
    with pytest.raises(grpc.RpcError):
        server.stub.Recommend(request(category=SF, max_results=-1), timeout=5)
    deadline = time.monotonic() + 5
    while count("INVALID_ARGUMENT") == bad and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (count("OK"), count("INVALID_ARGUMENT")) == (ok + 1, bad + 1)


def test_streaming_calls_of_every_kind_are_logged_and_measured(server, caplog):
    """Health's Watch (one request, a stream of answers, written with
    context.write) as much as the unary and bidirectional calls."""
    from prometheus_client import REGISTRY

    caplog.set_level(logging.DEBUG, logger="recommender.access")
    watch = "/grpc.health.v1.Health/Watch"

    def count() -> float:
        labels = {"method": watch, "code": "CANCELLED"}
        return REGISTRY.get_sample_value("recommender_rpc_seconds_count", labels) or 0

    before = count()
    # Ended by closing its channel: a traced channel hands the answers over as a
    # plain generator, without the call's cancel().
    with grpc.insecure_channel(server.target) as channel:
        answers = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert next(answers).status == health_pb2.HealthCheckResponse.SERVING

    def logged() -> list[str]:
        return [
            r.getMessage() for r in access_records(caplog) if f"method={watch}" in r.getMessage()
        ]

    # The server measures, then logs, once the call has ended on its side.
    deadline = time.monotonic() + 5
    while not logged() and time.monotonic() < deadline:
        time.sleep(0.01)
    [line] = logged()
    assert "code=CANCELLED" in line
    assert count() == before + 1
