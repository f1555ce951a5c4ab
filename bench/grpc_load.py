"""The gRPC load generator, in its own process: grpc.aio channels, N calls in flight.

Driven by bench.procs.Driver: each stdin line {"target", "concurrency",
"seconds", "users", "max_results"} runs one timed round and answers with
the count, the duration and every call's latency.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import grpc

from bench.procs import serve_commands
from bookstore.recommendations.v1 import recommendations_pb2 as pb
from events.contracts import book_category

METHOD = "/bookstore.recommendations.v1.Recommendations/Recommend"
CATEGORIES = 7


class Load:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.channels: dict[str, grpc.aio.Channel] = {}

    def call(self, target: str) -> Any:
        if target not in self.channels:
            self.channels[target] = grpc.aio.insecure_channel(target)
        return self.channels[target].unary_unary(
            METHOD,
            request_serializer=pb.RecommendationRequest.SerializeToString,
            response_deserializer=pb.RecommendationResponse.FromString,
        )

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        return self.loop.run_until_complete(self.round(**command))

    async def round(
        self,
        *,
        target: str,
        concurrency: int,
        seconds: float,
        users: int,
        max_results: int = 10,
        seed: int = 1,
    ) -> dict[str, Any]:
        call = self.call(target)
        rng = random.Random(seed)
        requests = [
            pb.RecommendationRequest(
                user_id=rng.randint(1, users),
                category=book_category(rng.randrange(CATEGORIES)),
                max_results=max_results,
            )
            for _ in range(4096)
        ]
        latencies: list[float] = []
        errors = 0
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(offset: int) -> None:
            nonlocal errors
            n = offset
            while time.perf_counter() < deadline:
                request = requests[n % len(requests)]
                n += concurrency
                t0 = time.perf_counter()
                try:
                    await call(request, timeout=10)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
        return {
            "count": len(latencies),
            "seconds": elapsed,
            "latencies": [round(x, 7) for x in latencies],
            "errors": errors,
        }


if __name__ == "__main__":
    serve_commands(Load().handle)
