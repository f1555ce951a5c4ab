"""The recommender's settings, read once from the environment (12-factor)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator
from pydantic_settings import SettingsConfigDict

from events.amqp import BrokerEnv
from events.environment import (
    CaFile,
    ConfigError,
    Duration,
    Flag,
    LogFormat,
    LogLevel,
    PemFile,
    Port,
    check_key_pair,
    one_of,
)
from events.metrics import DEFAULT_METRICS_ADDR
from events.recommender_link import AuthToken
from recommender.calls import DEFAULT_SLOW_SECONDS, EVERY, PROBLEMS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_CATALOG = REPO_ROOT / "data" / "demo_catalog.csv"

__all__ = ["REPO_ROOT", "ConfigError", "ServerTls", "Settings"]


def _listen(address: str) -> str:
    # gRPC takes a port out of range modulo 65536 and binds another one.
    _, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"must be host:port, the port 0 (any free one) to 65535, got {address!r}")
    return address


@dataclass(frozen=True, slots=True)
class ServerTls:
    """The listening port's certificate and key; with ``client_ca``, mutual TLS."""

    cert: Path
    key: Path
    # Clients must present a certificate signed by this CA (or be refused).
    client_ca: Path | None = None


class Settings(BrokerEnv):
    """The server's settings: RECOMMENDER_<FIELD> unless an alias says otherwise."""

    model_config = SettingsConfigDict(env_prefix="RECOMMENDER_")

    listen: Annotated[str, AfterValidator(_listen)] = "127.0.0.1:50051"
    db_path: Path = Field(
        REPO_ROOT / "var" / "recommender.sqlite3", validation_alias="RECOMMENDER_DB"
    )
    demo_catalog: Path = DEMO_CATALOG
    # Seconds in-flight calls get to finish after SIGTERM before being cancelled.
    grace_seconds: Duration = 10.0
    # Duration to report NOT_SERVING before refusing new calls, so load
    # balancers watching health stop routing here first.
    drain_delay_seconds: Duration = 0.0
    # Duration a client's connection lives before the server asks it to move to
    # a new one (0: for ever). Clients resolve the DNS name again only when a
    # connection ends, so this bounds how long a replica added since waits for
    # its share of the calls.
    max_connection_age_seconds: Duration = 30.0
    # Duration the calls in flight on a retired connection get to finish: at
    # least the longest call's deadline (the digest's stream, 60 s by default).
    max_connection_age_grace_seconds: Duration = 60.0
    log_level: LogLevel = "INFO"
    # Which calls have an access log line: "problems" (failed or slow) or "every".
    access_log: Annotated[str, AfterValidator(one_of(PROBLEMS, EVERY))] = PROBLEMS
    # From how long a call counts as slow, and is logged (milliseconds).
    slow_call_ms: Duration = DEFAULT_SLOW_SECONDS * 1000
    log_format: LogFormat = Field("plain", validation_alias="LOG_FORMAT")
    # Learn books and purchases from domain events (off: serve the store as is).
    consume_events: Flag = True
    # Names this replica's own queue: every replica keeps its own store, so
    # each needs every event. It must stay the same across restarts.
    instance: str = Field(default_factory=socket.gethostname)
    # Both or neither (plaintext: the default, for one machine or a private network).
    tls_cert: PemFile | None = None
    tls_key: PemFile | None = None
    # Clients must present a certificate signed by this CA (mutual TLS).
    tls_client_ca: CaFile | None = None
    # Callers must send "authorization: Bearer <token>" (empty: no check).
    auth_token: AuthToken = Field("", repr=False)
    # Prometheus /metrics (unset: none).
    metrics_port: Port | None = None
    metrics_addr: str = Field(DEFAULT_METRICS_ADDR, validation_alias="METRICS_ADDR")

    @model_validator(mode="after")
    def _server_pair(self) -> Settings:
        pair = ("RECOMMENDER_TLS_CERT", self.tls_cert), ("RECOMMENDER_TLS_KEY", self.tls_key)
        if not check_key_pair(*pair) and self.tls_client_ca is not None:
            raise ValueError(
                "RECOMMENDER_TLS_CLIENT_CA needs TLS: "
                "set RECOMMENDER_TLS_CERT and RECOMMENDER_TLS_KEY too"
            )
        return self

    @property
    def tls(self) -> ServerTls | None:
        if self.tls_cert is None or self.tls_key is None:
            return None
        return ServerTls(cert=self.tls_cert, key=self.tls_key, client_ca=self.tls_client_ca)
