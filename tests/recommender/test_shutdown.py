"""serve()'s order of stopping: health turns NOT_SERVING before the events
consumer finishes its batch, and a stop asked for during the load never
says SERVING."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

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
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        return reply.status


def test_health_says_not_serving_while_the_consumer_finishes_its_batch(tmp_path, monkeypatch):
    port = free_port()
    seen: list[int] = []

    async def start_consumer(settings, index):
        return "consumer"

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
    stop_holder: list[asyncio.Event] = []
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
