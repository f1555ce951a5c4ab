"""The bare baseline of the recommender: the same grpc.aio server setup
(every call traced, measured and logged as ours, health, reflection,
logging), answering Recommend with an empty response without looking at
anything.

python -m bench.echo_server   (listens on RECOMMENDER_LISTEN, prints the port)
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from bench.procs import until_terminated
from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from events.log_format import configure_logging
from recommender.calls import CallPolicy, WrappingServer
from recommender.config import Settings
from recommender.server import SERVED

log = logging.getLogger("recommender")
EMPTY = pb.RecommendationResponse()


class EchoServicer(pb_grpc.RecommendationsServicer):
    async def Recommend(
        self, request: pb.RecommendationRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecommendationResponse:
        return EMPTY


async def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    server = grpc.aio.server()
    wrapping = WrappingServer(server, CallPolicy().wrap)
    pb_grpc.add_RecommendationsServicer_to_server(EchoServicer(), wrapping)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, wrapping)  # type: ignore[arg-type]
    # The aio servicer by name: enable_server_reflection picks it only for a grpc.aio.Server.
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer((*SERVED, health.SERVICE_NAME)),
        wrapping,
    )
    port = server.add_insecure_port(settings.listen)
    await server.start()
    for name in ("", *SERVED):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving on 127.0.0.1:%d", port)
    log.info("ready")
    await until_terminated()
    await server.stop(1)


if __name__ == "__main__":
    asyncio.run(main())
