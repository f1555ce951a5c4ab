"""serve()'s order of starting and stopping: SERVING only once the events
consumer has caught up on the history, health turns NOT_SERVING before the
consumer finishes its batch, and a stop asked for during the load never says
SERVING."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from recommender import server
from recommender.config import Settings
from tests.processes import free_port

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def settings_for(tmp_path: Path, port: int) -> Settings:
    return Settings.from_env(
        {
            "RECOMMENDER_LISTEN": f"127.0.0.1:{port}",
            "RECOMMENDER_DB": str(tmp_path / "store.sqlite3"),
            "RECOMMENDER_GRACE_SECONDS": "1",
            "RECOMMENDER_CONSUME_EVENTS": "true",
        }
    )


async def health_of(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        # types-grpcio-health-checking's HealthStub declares none of its methods.
        reply = await health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
            health_pb2.HealthCheckRequest(), timeout=5
        )
        return reply.status


class Consumer:
    """Stands for the events consumer: ``caught_up`` is set when the test says."""

    def __init__(self, *, caught_up: bool) -> None:
        self.caught_up = asyncio.Event()
        if caught_up:
            self.caught_up.set()


def test_health_says_not_serving_while_the_consumer_finishes_its_batch(tmp_path, monkeypatch):
    port = free_port()
    seen: list[int] = []

    async def start_consumer(settings, index):
        return Consumer(caught_up=True)

    async def stop_consumer(consumer):
        # The batch in hand takes a while: balancers must already turn away.
        seen.append(await health_of(port))

    monkeypatch.setattr(server, "start_consumer", start_consumer)
    monkeypatch.setattr(server, "stop_consumer", stop_consumer)

    async def scenario() -> None:
        stop = asyncio.Event()
        serving = asyncio.create_task(server.serve(settings_for(tmp_path, port), stop))
        while True:
            try:
                if await health_of(port) == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(serving, 30)

    asyncio.run(scenario())
    assert seen == [NOT_SERVING]


def test_a_stop_during_the_load_never_says_serving_nor_consumes(tmp_path, monkeypatch):
    port = free_port()
    stop_holder: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
    readied: list[object] = []
    consumers: list[object] = []
    real_load = server.load_index

    def load_index_then_stop(settings):
        index = real_load(settings)
        loop, stop = stop_holder[0]
        loop.call_soon_threadsafe(stop.set)  # SIGTERM while the store loads
        return index

    async def start_consumer(settings, index):
        consumers.append(index)

    async def ready(self, index):
        readied.append(index)

    monkeypatch.setattr(server, "load_index", load_index_then_stop)
    monkeypatch.setattr(server, "start_consumer", start_consumer)
    monkeypatch.setattr(server.RunningServer, "ready", ready)

    async def scenario() -> None:
        stop = asyncio.Event()
        stop_holder.append((asyncio.get_running_loop(), stop))
        await asyncio.wait_for(server.serve(settings_for(tmp_path, port), stop), 30)

    asyncio.run(scenario())
    assert readied == []
    assert consumers == []


def test_health_says_serving_only_once_the_consumer_has_caught_up(tmp_path, monkeypatch):
    port = free_port()
    consumer = Consumer(caught_up=False)
    started = asyncio.Event()

    async def start_consumer(settings, index):
        started.set()  # the store is loaded and indexed
        return consumer

    async def stop_consumer(consumer):
        pass

    monkeypatch.setattr(server, "start_consumer", start_consumer)
    monkeypatch.setattr(server, "stop_consumer", stop_consumer)

    async def scenario() -> None:
        stop = asyncio.Event()
        serving = asyncio.create_task(server.serve(settings_for(tmp_path, port), stop))
        await asyncio.wait_for(started.wait(), 30)
        assert await health_of(port) == NOT_SERVING
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await pb_grpc.RecommendationsStub(channel).Recommend(
                    pb.RecommendationRequest(category=pb.MYSTERY), timeout=5
                )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "catching up on the event history" in (refused.value.details() or "")

        consumer.caught_up.set()
        for _ in range(100):
            if await health_of(port) == health_pb2.HealthCheckResponse.SERVING:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("still NOT_SERVING 5 s after the consumer caught up")
        stop.set()
        await asyncio.wait_for(serving, 30)

    asyncio.run(scenario())
