"""python -m recommender.healthcheck: is the recommender of this host serving?

For container health checks (compose/docker-compose.yml runs it inside each
recommender replica): asks ``grpc.health.v1.Health/Check`` at the port of
RECOMMENDER_LISTEN, on 127.0.0.1 when the server listens on every address,
with a deadline (2 s by default). Exits 0 only for SERVING; 1 for anything
else: NOT_SERVING (the store is still loading, a new replica is catching up
on the event history, or the server is draining), no answer before the
deadline, a refused connection, an unusable address. Docker reserves exit
code 2, so nothing here exits with it.

When the server listens with TLS (RECOMMENDER_TLS_CERT), the check is a TLS
client configured like the site: RECOMMENDER_TLS_CA verifies the server
(gRPC's public roots when unset), RECOMMENDER_TLS_SERVER_NAME overrides the
name expected, and RECOMMENDER_TLS_CLIENT_CERT / _KEY are its identity when the
server requires client certificates. Health needs no RECOMMENDER_AUTH_TOKEN.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from events.recommender_link import ClientTls, RecommenderLink
from recommender.config import ConfigError, Settings

SERVING = health_pb2.HealthCheckResponse.SERVING
DEFAULT_TIMEOUT = 2.0
# A server bound to every address answers on loopback.
_ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]", "*"}


def health_target(listen: str) -> str:
    """The address to check a server listening on ``listen`` at (host:port,
    as Settings checked it)."""
    host, _, port = listen.rpartition(":")
    if int(port) == 0:
        raise ValueError("RECOMMENDER_LISTEN's port is 0 (any free one): no port to check")
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    return f"{host}:{int(port)}"


def channel_credentials(tls: ClientTls) -> grpc.ChannelCredentials:
    """TLS credentials from ``tls``'s files (read now, so a change is seen next run)."""
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes() if tls.ca else None,
        private_key=tls.key.read_bytes() if tls.key else None,
        certificate_chain=tls.cert.read_bytes() if tls.cert else None,
    )


def check(
    target: str,
    *,
    service: str = "",
    timeout: float = DEFAULT_TIMEOUT,
    tls: ClientTls | None = None,
) -> tuple[bool, str]:
    """(serving?, what was seen) for ``service`` ("" is the whole server) at ``target``;
    over TLS when ``tls`` is given."""
    # Never through an HTTP proxy a container's environment may name.
    options: list[tuple[str, object]] = [("grpc.enable_http_proxy", 0)]
    if tls is None:
        channel = grpc.insecure_channel(target, options=options)
    else:
        if tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        channel = grpc.secure_channel(target, channel_credentials(tls), options=options)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            # types-grpcio-health-checking's HealthStub declares none of its methods.
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)  # type: ignore[attr-defined]
        except grpc.RpcError as exc:
            return False, f"{exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return response.status == SERVING, status


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recommender.healthcheck",
        description="Exit 0 if the recommender at RECOMMENDER_LISTEN's port says SERVING, else 1.",
    )
    parser.add_argument(
        "--service", default="", help='the service to ask about (default "": the whole server)'
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="deadline in seconds (default 2)"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage; Docker reserves 2
        return 0 if exc.code == 0 else 1
    try:
        settings = Settings.from_env(env)
        target = health_target(settings.listen)
        tls = None if settings.tls is None else RecommenderLink.from_env(env).client_tls
    except (ConfigError, ValueError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    mutual = settings.tls is not None and settings.tls.client_ca is not None
    if mutual and tls is not None and tls.cert is None:
        print(
            "unhealthy: the server requires client certificates (RECOMMENDER_TLS_CLIENT_CA); "
            "set RECOMMENDER_TLS_CLIENT_CERT and RECOMMENDER_TLS_CLIENT_KEY for the health check",
            file=sys.stderr,
        )
        return 1
    serving, seen = check(target, service=args.service, timeout=args.timeout, tls=tls)
    # Docker keeps the output of the last checks: `docker inspect` shows why.
    out = sys.stdout if serving else sys.stderr
    print(f"{target} {args.service or '(server)'}: {seen}", file=out)
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
