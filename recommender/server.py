"""Assembling and running the grpc.aio server: services, health, reflection, drain."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from bookstore.legacy import recommendations_pb2 as legacy_pb  # noqa: F401  (reflection)
from bookstore.recommendations.v1 import recommendations_pb2 as pb
from events.metrics import serve_metrics
from recommender.auth import TokenCheck
from recommender.calls import (
    DEFAULT_SLOW_SECONDS,
    EVERY,
    PROBLEMS,
    CallPolicy,
    WrappingServer,
)
from recommender.config import ConfigError, ServerTls, Settings
from recommender.engine import RecommendationIndex
from recommender.events_consumer import EventsConsumer
from recommender.servicer import (
    LEGACY_SERVICE_NAME,
    RecommendationsServicer,
    legacy_handler,
    v1_handler,
)
from recommender.store import Store

log = logging.getLogger("recommender")

V1_SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Recommendations"].full_name
SERVED = (V1_SERVICE_NAME, LEGACY_SERVICE_NAME)


class ListenError(RuntimeError):
    """The listen address could not be bound."""


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    servicer: RecommendationsServicer
    health: health.aio.HealthServicer

    async def ready(self, index: RecommendationIndex) -> None:
        """Start answering from ``index`` and tell health checkers so."""
        self.servicer.index = index
        for name in ("", *SERVED):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def drain(self, *, grace: float, delay: float = 0.0) -> None:
        """NOT_SERVING first, then refuse new calls and give in-flight ones ``grace`` s."""
        await self.health.enter_graceful_shutdown()
        if delay:
            await asyncio.sleep(delay)
        await self.server.stop(grace)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None


def server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    """TLS with ``tls``'s certificate; with a client CA, clients without a certificate
    it signed are refused during the handshake, before any RPC."""
    pair = (_read(tls.key, "RECOMMENDER_TLS_KEY"), _read(tls.cert, "RECOMMENDER_TLS_CERT"))
    client_ca = None if tls.client_ca is None else _read(tls.client_ca, "RECOMMENDER_TLS_CLIENT_CA")
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def describe_security(tls: ServerTls | None, auth_token: str) -> str:
    """How the port is protected, for the start-up log (never the token itself)."""
    link = "plaintext"
    if tls is not None:
        link = "mutual TLS" if tls.client_ca is not None else "TLS"
    return link + (", bearer token required" if auth_token else "")


def connection_age_options(*, max_age: float, grace: float) -> list[tuple[str, int]]:
    """Server options that retire each client connection after ``max_age`` seconds
    (gRPC adds up to 10% either way), leaving the calls on it ``grace`` seconds.

    The server sends GOAWAY: the client opens a new connection for its next
    calls without failing any, and, because a connection ended, its DNS
    resolver looks again and finds replicas added since. 0: connections live
    for ever.
    """
    if max_age <= 0:
        return []
    return [
        ("grpc.max_connection_age_ms", max(1, round(max_age * 1000))),
        ("grpc.max_connection_age_grace_ms", round(grace * 1000)),
    ]


async def start_server(
    *,
    listen: str,
    index: RecommendationIndex | None = None,
    tls: ServerTls | None = None,
    auth_token: str = "",
    max_connection_age: float = 0.0,
    max_connection_age_grace: float = 0.0,
    access_log: str = PROBLEMS,
    slow_call_seconds: float = DEFAULT_SLOW_SECONDS,
) -> RunningServer:
    """Bind and start. Without an index it answers UNAVAILABLE until ``ready()``.

    ``tls`` switches the port to TLS (mutual with a client CA); ``auth_token``
    makes every RPC but health checks require it; ``max_connection_age``
    (seconds, 0: never) moves clients to new connections, see
    ``connection_age_options``. ``access_log`` ("problems" or "every") and
    ``slow_call_seconds``: which calls have a line (recommender.calls.CallPolicy).
    """
    credentials = None if tls is None else server_credentials(tls)
    server = grpc.aio.server(
        options=connection_age_options(max_age=max_connection_age, grace=max_connection_age_grace),
    )
    policy = CallPolicy(
        every_call=access_log == EVERY,
        slow_seconds=slow_call_seconds,
        token=TokenCheck(auth_token) if auth_token else None,
    )
    # Every service registers through this: its methods traced, measured,
    # logged and (with a token) guarded, each wrapped once.
    wrapping = WrappingServer(server, policy.wrap)
    servicer = RecommendationsServicer(index)
    wrapping.add_generic_rpc_handlers((v1_handler(servicer), legacy_handler(servicer)))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, wrapping)  # type: ignore[arg-type]
    # The aio servicer by name: enable_server_reflection picks it only for a grpc.aio.Server.
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(  # type: ignore[no-untyped-call]
        reflection.aio.ReflectionServicer((*SERVED, health.SERVICE_NAME, reflection.SERVICE_NAME)),
        wrapping,
    )
    try:
        if credentials is None:
            port = server.add_insecure_port(listen)
        else:
            port = server.add_secure_port(listen, credentials)
    except RuntimeError as exc:
        raise ListenError(f"cannot listen on {listen}: {exc}") from exc
    await server.start()
    running = RunningServer(server, port, servicer, health_servicer)
    if index is None:
        for name in ("", *SERVED):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    else:
        await running.ready(index)
    return running


def load_index(settings: Settings) -> RecommendationIndex:
    """Open the store (importing the demo catalog into an empty one) and index it."""
    from recommender.catalog_file import read_catalog

    started = time.perf_counter()
    with Store(settings.db_path) as store:
        if store.is_empty():
            books = read_catalog(settings.demo_catalog)
            store.upsert_books(books)
            log.info(
                "empty store: imported %d demo books from %s", len(books), settings.demo_catalog
            )
        index = RecommendationIndex.build(store.books(), store.purchases())
    log.info(
        "indexed %d books and %d purchases from %s in %.2fs",
        len(index),
        index.purchase_count,
        settings.db_path,
        time.perf_counter() - started,
    )
    return index


async def start_consumer(settings: Settings, index: RecommendationIndex) -> EventsConsumer:
    """Consume this replica's queue into its store and ``index``, in the background."""
    store = await asyncio.to_thread(Store, settings.db_path)
    consumer = EventsConsumer(
        store=store,
        index=index,
        amqp_url=settings.amqp_url,
        topology=settings.topology,
        instance=settings.instance,
        log_each=settings.events_log_each,
    )
    consumer.start()
    return consumer


async def stop_consumer(consumer: EventsConsumer) -> None:
    await consumer.stop()
    await asyncio.to_thread(consumer.store.close)


async def _until_set(*events: asyncio.Event) -> None:
    """Until one of ``events`` is set."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM or SIGINT (or ``stop`` is set), then drain."""
    # First: a taken port stops the process in one line, before a server
    # exists that would have to be torn down.
    serve_metrics(
        settings.metrics_port, address=settings.metrics_addr, variable="RECOMMENDER_METRICS_PORT"
    )
    running = await start_server(
        listen=settings.listen,
        tls=settings.tls,
        auth_token=settings.auth_token,
        max_connection_age=settings.max_connection_age_seconds,
        max_connection_age_grace=settings.max_connection_age_grace_seconds,
        access_log=settings.access_log,
        slow_call_seconds=settings.slow_call_ms / 1000,
    )
    host = settings.listen.rsplit(":", 1)[0]
    security = describe_security(settings.tls, settings.auth_token)
    log.info("serving on %s:%d (%s; loading the store)", host, running.port, security)
    if settings.auth_token and settings.tls is None:
        log.warning("RECOMMENDER_AUTH_TOKEN without TLS: the token crosses the network in clear")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    consumer: EventsConsumer | None = None
    try:
        index = await asyncio.to_thread(load_index, settings)
        # Asked to stop while loading: never say SERVING, nor start consuming.
        if not stop.is_set():
            # Only now: the index was built from the store, and each event must
            # reach both after that, in the order the store commits them.
            if settings.consume_events:
                consumer = await start_consumer(settings, index)
                # A store that never caught up on the history (a new replica)
                # would answer without the shop's past: NOT_SERVING until it
                # has, so balancers send the calls to replicas that know it.
                await _until_set(consumer.caught_up, stop)
            else:
                log.info("not consuming events (RECOMMENDER_CONSUME_EVENTS is off)")
        if not stop.is_set():
            await running.ready(index)
            log.info("ready")
            await stop.wait()
        log.info("draining (grace %.1fs)", settings.grace_seconds)
    finally:
        # NOT_SERVING at once, so balancers turn away while the consumer
        # finishes the batch in hand (which may take its stop timeout).
        await running.health.enter_graceful_shutdown()
        try:
            # Before the port closes, so the batch in hand is acked first.
            if consumer is not None:
                await stop_consumer(consumer)
        finally:
            await running.drain(grace=settings.grace_seconds, delay=settings.drain_delay_seconds)
    log.info("stopped")
