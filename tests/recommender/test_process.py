"""`python -m recommender` as an operator runs it: first start, SIGTERM drain, the CLI."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from recommender.catalog_file import read_catalog
from recommender.config import DEMO_CATALOG
from recommender.store import Store
from tests.tracing import within


def test_first_start_imports_the_demo_catalog_and_serves_it(recommender_process, tmp_path):
    _, target = recommender_process()
    demo = {b.id: b for b in read_catalog(DEMO_CATALOG)}
    with grpc.insecure_channel(target) as channel:
        reply = pb_grpc.RecommendationsStub(channel).Recommend(
            pb.RecommendationRequest(category=pb.HISTORY, max_results=5), timeout=5
        )
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert len(reply.recommendations) == 5
    for book in reply.recommendations:
        assert demo[book.id].title == book.title
        assert demo[book.id].category == pb.HISTORY
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    with Store(tmp_path / "recommender.sqlite3") as store:
        assert len(list(store.books())) == len(demo)


def health_statuses_until_refused(health: health_pb2_grpc.HealthStub) -> list[int]:
    """Health answers seen before the server refused a call with UNAVAILABLE."""
    statuses = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            # types-grpcio-health-checking's HealthStub declares none of its methods.
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]
            statuses.append(reply.status)
        except grpc.RpcError as refused:
            if refused.code() is not grpc.StatusCode.UNAVAILABLE:
                raise
            return statuses
        time.sleep(0.05)
    raise AssertionError("the server kept accepting new calls while draining")


def test_sigterm_finishes_in_flight_calls_and_refuses_new_ones(recommender_process):
    process, target = recommender_process(
        RECOMMENDER_DRAIN_DELAY_SECONDS="0.5", RECOMMENDER_GRACE_SECONDS="20"
    )
    outbox: queue.Queue[pb.RecommendationRequest | None] = queue.Queue()
    with grpc.insecure_channel(target) as channel:
        stream = pb_grpc.RecommendationsStub(channel).RecommendStream(
            iter(outbox.get, None), timeout=30
        )
        outbox.put(pb.RecommendationRequest(category=pb.MYSTERY, max_results=2))
        assert len(next(stream).recommendations) == 2

        process.proc.send_signal(signal.SIGTERM)
        process.wait_for("draining")
        # NOT_SERVING first, then the port refuses new calls.
        statuses = health_statuses_until_refused(health_pb2_grpc.HealthStub(channel))
        assert statuses
        assert set(statuses) == {health_pb2.HealthCheckResponse.NOT_SERVING}

        # The stream opened before SIGTERM is still answered, then ends cleanly.
        outbox.put(pb.RecommendationRequest(category=pb.ROMANCE, max_results=3))
        assert len(next(stream).recommendations) == 3
        outbox.put(None)
        assert list(stream) == []
        assert stream.code() is grpc.StatusCode.OK
    assert process.proc.wait(10) == 0
    process.wait_for("stopped")


def run_cli(*args: str, db: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recommender", *args],
        env={**os.environ, "RECOMMENDER_DB": str(db), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_import_catalog_adds_books_and_refuses_a_bad_file_whole(tmp_path):
    db = tmp_path / "r.sqlite3"
    good = tmp_path / "good.csv"
    good.write_text("id,title,author,category\n1,Dune,Frank Herbert,SCIENCE_FICTION\n")
    result = run_cli("import-catalog", str(good), db=db)
    assert result.returncode == 0, result.stderr
    assert "imported 1 books" in result.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("id,title,author,category\n2,Emma,Jane Austen,ROMANCE\n3,Poems,Someone,POETRY\n")
    result = run_cli("import-catalog", str(bad), db=db)
    assert result.returncode == 1
    assert "bad.csv:3: unknown category 'POETRY'" in result.stderr
    with Store(db) as store:
        assert [b.title for b in store.books()] == ["Dune"]


def test_bad_configuration_stops_with_a_clear_message(tmp_path):
    result = run_cli(db=tmp_path / "r.sqlite3", RECOMMENDER_GRACE_SECONDS="soon")
    assert result.returncode == 2
    assert "RECOMMENDER_GRACE_SECONDS must be a number, got 'soon'" in result.stderr


def test_a_taken_port_stops_with_a_clear_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(db=tmp_path / "r.sqlite3", RECOMMENDER_LISTEN=f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_with_tracing_off_the_access_log_keeps_the_callers_trace_id(recommender_process):
    # No span is made where none is exported; the caller's trace still names the line.
    process, target = recommender_process(
        OTEL_TRACES_EXPORTER="none", RECOMMENDER_ACCESS_LOG="every"
    )
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    caller = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    with grpc.insecure_channel(target) as channel, within(caller):
        pb_grpc.RecommendationsStub(channel).Recommend(
            pb.RecommendationRequest(category=pb.HISTORY, max_results=1), timeout=5
        )
    line = process.wait_for(
        r"rpc method=/bookstore\.recommendations\.v1\.Recommendations/Recommend "
    )
    assert f"[{trace_id}]" in line.string


def test_with_tracing_disabled_the_access_log_reads_no_trace(recommender_process):
    # OTEL_SDK_DISABLED: the caller's metadata is not even read.
    process, target = recommender_process(OTEL_SDK_DISABLED="true", RECOMMENDER_ACCESS_LOG="every")
    caller = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    with grpc.insecure_channel(target) as channel, within(caller):
        pb_grpc.RecommendationsStub(channel).Recommend(
            pb.RecommendationRequest(category=pb.HISTORY, max_results=1), timeout=5
        )
    line = process.wait_for(
        r"rpc method=/bookstore\.recommendations\.v1\.Recommendations/Recommend "
    )
    assert " [-] " in line.string
