"""A hostile or careless gRPC client against a real `python -m recommender`.

A stream written to without reading its answers, then dropped (cancelled,
its channel closed, or its deadline expired), once crashed the server with
SIGSEGV: the access log asked gRPC for the peer of a call already gone. The
process must outlive any such client and go on answering.
"""

from __future__ import annotations

import asyncio
import re

import grpc
import pytest

from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc

REQUEST = pb.RecommendationRequest(user_id=1, category=pb.MYSTERY, max_results=3)
UNREAD = 2_000  # requests written without reading an answer: the server's writes back up
ROUNDS = 5


async def unread_stream(target: str, drop: str) -> None:
    """Writes many requests, reads nothing, then leaves as ``drop`` says."""
    channel = grpc.aio.insecure_channel(target)
    stub = pb_grpc.RecommendationsStub(channel)
    call = stub.RecommendStream(timeout=0.3 if drop == "deadline" else None)
    try:
        for _ in range(UNREAD):
            await call.write(REQUEST)
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        pass  # the deadline expired while writing: the point of that case
    if drop == "cancel":
        call.cancel()
    elif drop == "deadline":
        with pytest.raises(grpc.aio.AioRpcError):
            async for _ in call:
                pass
    await channel.close()  # drop == "close": without cancelling first


async def abuse(target: str) -> None:
    for _ in range(ROUNDS):
        # One at a time, then all at once: the crash needed neither.
        for drop in ("cancel", "close", "deadline"):
            await unread_stream(target, drop)
        await asyncio.gather(*(unread_stream(target, d) for d in ("cancel", "close", "deadline")))


def test_streams_dropped_midway_never_crash_the_server(recommender_process):
    process, target = recommender_process()
    asyncio.run(abuse(target))

    assert process.proc.poll() is None, f"the recommender died: {process.proc.returncode}"
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.RecommendationsStub(channel)
        assert len(stub.Recommend(REQUEST, timeout=5).recommendations) == 3
        answers = list(stub.RecommendStream(iter([REQUEST, REQUEST]), timeout=5))
    assert [len(a.recommendations) for a in answers] == [3, 3]
    assert process.proc.poll() is None

    # The access log still names who called, for the dropped calls too.
    dropped = process.wait_for(r"RecommendStream code=(CANCELLED|DEADLINE_EXCEEDED) .* peer=(\S*)")
    assert re.fullmatch(r"ipv4:127\.0\.0\.1:\d+", dropped.group(2))
