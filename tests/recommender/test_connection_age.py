"""Clients are moved to new connections every RECOMMENDER_MAX_CONNECTION_AGE_SECONDS.

gRPC's DNS resolver looks a name up again only when a connection ends, so
without this a site process would never call a replica added after it
connected. Moving must cost no call: the server says GOAWAY, the client
takes its next calls to a new connection, and calls in flight on the old one
finish within the grace.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from recommender.engine import RecommendationIndex
from recommender.server import start_server
from tests.grpc_server import ServerThread

# Short, so that a test sees several connections retired.
AGE = 0.3
GRACE = 10.0
# Distinct client connections a test waits for: three retired, one more.
CONNECTIONS = 4
PEER = re.compile(r"peer=(\S+)")

REQUEST = pb.RecommendationRequest(user_id=1, category=pb.SCIENCE_FICTION, max_results=3)


@pytest.fixture
def aging_target(index: RecommendationIndex) -> Iterator[str]:
    thread = ServerThread()
    running = thread.run(
        start_server(
            listen="127.0.0.1:0",
            index=index,
            max_connection_age=AGE,
            max_connection_age_grace=GRACE,
            # Each call's line tells which connection (peer) it came on.
            access_log="every",
        )
    )
    yield f"127.0.0.1:{running.port}"
    thread.run(running.server.stop(None))
    thread.close()


def peers(records: list[logging.LogRecord]) -> list[str]:
    """The client address of each call the server logged, in order."""
    return [m.group(1) for r in records if (m := PEER.search(r.getMessage()))]


def test_calls_move_to_new_connections_and_none_fails(aging_target, caplog):
    caplog.set_level(logging.INFO, logger="recommender.access")
    failures: list[BaseException] = []
    calls = 0
    lock = threading.Lock()
    stop = threading.Event()

    def call_in_a_loop(stub: pb_grpc.RecommendationsStub) -> None:
        nonlocal calls
        while not stop.is_set():
            try:
                reply = stub.Recommend(REQUEST, timeout=5)
                assert [b.id for b in reply.recommendations] == [7]
            except BaseException as exc:  # any failure at all is the finding
                failures.append(exc)
                return
            with lock:
                calls += 1

    # A plain channel (no retry policy of ours): only gRPC's own transparent
    # retry of calls the server never started is allowed to help.
    with grpc.insecure_channel(aging_target) as channel:
        stub = pb_grpc.RecommendationsStub(channel)
        # Several at once, so calls are in flight when a GOAWAY arrives.
        callers = [threading.Thread(target=call_in_a_loop, args=(stub,)) for _ in range(4)]
        for caller in callers:
            caller.start()
        deadline = time.monotonic() + 30
        while len(set(peers(caplog.records))) < CONNECTIONS and time.monotonic() < deadline:
            if failures:
                break
            time.sleep(0.05)
        stop.set()
        for caller in callers:
            caller.join(10)

    assert not failures, failures
    seen = peers(caplog.records)
    assert len(set(seen)) >= CONNECTIONS, f"{len(seen)} calls from {sorted(set(seen))}"
    assert calls == len(seen)


def test_a_stream_longer_than_the_age_finishes_within_the_grace(aging_target):
    """The digest's stream outlives its connection's age: it must not be cut."""
    answers = 0

    def requests() -> Iterator[pb.RecommendationRequest]:
        # Spread over about five ages: its connection is retired meanwhile.
        for _ in range(8):
            yield REQUEST
            time.sleep(AGE / 2)

    with grpc.insecure_channel(aging_target) as channel:
        stub = pb_grpc.RecommendationsStub(channel)
        for reply in stub.RecommendStream(requests(), timeout=GRACE):
            assert [b.id for b in reply.recommendations] == [7]
            answers += 1
        # The channel still answers, on a new connection.
        assert stub.Recommend(REQUEST, timeout=5).recommendations
    assert answers == 8


def test_the_setting_reaches_the_server(recommender_process):
    """As an operator sets it: `python -m recommender` retires connections too."""
    process, target = recommender_process(
        RECOMMENDER_MAX_CONNECTION_AGE_SECONDS=str(AGE), RECOMMENDER_ACCESS_LOG="every"
    )
    request = pb.RecommendationRequest(category=pb.HISTORY, max_results=3)
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.RecommendationsStub(channel)
        seen: set[str] = set()
        deadline = time.monotonic() + 30
        while len(seen) < 2 and time.monotonic() < deadline:
            assert stub.Recommend(request, timeout=5).recommendations
            seen.add(process.wait_for(r"rpc method=\S+/Recommend .*peer=(\S+)").group(1))
    assert len(seen) >= 2, process.output()
