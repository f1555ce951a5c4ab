"""The gRPC load generator, in its own process: grpc.aio channels, N calls in flight.

Driven by bench.procs.Driver: each stdin line {"target", "concurrency",
"seconds", "users", "max_results", "tls", "tutorial", "traceparent"} runs
one timed round and answers with the count, the duration and every call's
latency. ``traceparent`` goes with every call as W3C metadata, as the
site's instrumented client sends it. ``tls``
names a directory of development certificates (scripts/dev_certs.py): the
channel is then mutual TLS, as the site's. ``tutorial`` calls the seed
tutorial's service (protos/bookstore/legacy) with its three categories, as a
client generated from the tutorial's proto does.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import grpc

from bench.procs import serve_commands
from bookstore.legacy import recommendations_pb2 as legacy_pb
from bookstore.recommendations.v1 import recommendations_pb2 as pb
from events.contracts import book_category

METHOD = "/bookstore.recommendations.v1.Recommendations/Recommend"
CATEGORIES = 7
TUTORIAL_METHOD = "/Recommendations/Recommend"
TUTORIAL_CATEGORIES = len(legacy_pb.BookCategory.values())


def channel_credentials(cert_dir: str) -> grpc.ChannelCredentials:
    """Mutual TLS with the development set: the CA, and the site's client certificate."""
    directory = Path(cert_dir)
    return grpc.ssl_channel_credentials(
        root_certificates=(directory / "ca.pem").read_bytes(),
        private_key=(directory / "client-key.pem").read_bytes(),
        certificate_chain=(directory / "client.pem").read_bytes(),
    )


class Load:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.channels: dict[tuple[str, str], grpc.aio.Channel] = {}

    def call(self, target: str, tls: str, tutorial: bool) -> Any:
        if (target, tls) not in self.channels:
            self.channels[target, tls] = (
                grpc.aio.secure_channel(target, channel_credentials(tls))
                if tls
                else grpc.aio.insecure_channel(target)
            )
        channel = self.channels[target, tls]
        if tutorial:
            # The tutorial's messages share v1's field numbers: the same bytes go out.
            return channel.unary_unary(
                TUTORIAL_METHOD,
                request_serializer=pb.RecommendationRequest.SerializeToString,
                response_deserializer=legacy_pb.RecommendationResponse.FromString,
            )
        return channel.unary_unary(
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
        tls: str = "",
        tutorial: bool = False,
        traceparent: str = "",
    ) -> dict[str, Any]:
        call = self.call(target, tls, tutorial)
        metadata = (("traceparent", traceparent),) if traceparent else None
        rng = random.Random(seed)
        categories = TUTORIAL_CATEGORIES if tutorial else CATEGORIES
        requests = [
            pb.RecommendationRequest(
                user_id=rng.randint(1, users),
                category=book_category(rng.randrange(categories)),
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
                    await call(request, timeout=10, metadata=metadata)
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
