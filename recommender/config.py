"""The recommender's settings, read once from the environment (12-factor)."""

from __future__ import annotations

import math
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from events.amqp import DEFAULT_AMQP_URL, broker_urls
from events.topology import Topology

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_CATALOG = REPO_ROOT / "data" / "demo_catalog.csv"


class ConfigError(ValueError):
    """An environment variable is set to something we cannot use."""


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):  # nan passes any comparison; sleeping inf never ends
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def _log_level(env: Mapping[str, str], default: str) -> str:
    level = (env.get("RECOMMENDER_LOG_LEVEL") or default).strip().upper()
    known = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    if level not in known:
        raise ConfigError(f"RECOMMENDER_LOG_LEVEL must be one of {', '.join(known)}, got {level!r}")
    return level


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if (word := raw.strip().lower()) in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false (or 1/0, yes/no, on/off), got {raw!r}")


def _amqp_url(env: Mapping[str, str], default: str) -> str:
    value = env.get("AMQP_URL") or default
    try:
        broker_urls(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return value


def _topology(env: Mapping[str, str]) -> Topology:
    try:
        return Topology.from_env(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _file(env: Mapping[str, str], name: str) -> Path | None:
    """A PEM file named by ``name``, or None when unset; unreadable is an error now,
    not a failed handshake later."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    path = Path(raw)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{name}: {path} is not a PEM file")
    return path


def _ca(env: Mapping[str, str], name: str) -> Path | None:
    path = _file(env, name)
    if path is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
        except ssl.SSLError as exc:
            raise ConfigError(f"{name}: {path} holds no usable certificate: {exc}") from None
    return path


def _no_passphrase() -> bytes:
    return b""  # gRPC cannot use an encrypted key: let loading it fail here


@dataclass(frozen=True, slots=True)
class ServerTls:
    """The listening port's certificate and key; with ``client_ca``, mutual TLS."""

    cert: Path
    key: Path
    # Clients must present a certificate signed by this CA (or be refused).
    client_ca: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServerTls | None:
        cert = _file(env, "RECOMMENDER_TLS_CERT")
        key = _file(env, "RECOMMENDER_TLS_KEY")
        client_ca = _ca(env, "RECOMMENDER_TLS_CLIENT_CA")
        if cert is None and key is None:
            if client_ca is not None:
                raise ConfigError(
                    "RECOMMENDER_TLS_CLIENT_CA needs TLS: "
                    "set RECOMMENDER_TLS_CERT and RECOMMENDER_TLS_KEY too"
                )
            return None
        if cert is None or key is None:
            missing = "RECOMMENDER_TLS_KEY" if key is None else "RECOMMENDER_TLS_CERT"
            raise ConfigError(
                f"set both RECOMMENDER_TLS_CERT and RECOMMENDER_TLS_KEY, or neither; {missing} "
                "is missing"
            )
        # The standard library parses both and checks they belong together.
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
                cert, key, password=_no_passphrase
            )
        except ssl.SSLError as exc:
            raise ConfigError(
                f"RECOMMENDER_TLS_CERT ({cert}) and RECOMMENDER_TLS_KEY ({key}) are not a usable "
                f"certificate and unencrypted key pair: {exc.reason or exc}"
            ) from None
        return cls(cert=cert, key=key, client_ca=client_ca)


@dataclass(frozen=True, slots=True)
class ClientTls:
    """What a client of this server trusts and presents (the health check is one).

    Named like the site's variables, so one set of settings serves both.
    """

    # None: gRPC's bundled public roots.
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    # The name to expect in the server's certificate instead of the target's host.
    server_name: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClientTls:
        cert = _file(env, "RECOMMENDER_TLS_CLIENT_CERT")
        key = _file(env, "RECOMMENDER_TLS_CLIENT_KEY")
        if (cert is None) != (key is None):
            raise ConfigError(
                "set both RECOMMENDER_TLS_CLIENT_CERT and RECOMMENDER_TLS_CLIENT_KEY, or neither"
            )
        return cls(
            ca=_ca(env, "RECOMMENDER_TLS_CA"),
            cert=cert,
            key=key,
            server_name=(env.get("RECOMMENDER_TLS_SERVER_NAME") or "").strip(),
        )


# Shorter is guessable; gRPC metadata values must be printable ASCII.
MIN_TOKEN_LENGTH = 16


def _token(env: Mapping[str, str]) -> str:
    token = (env.get("RECOMMENDER_AUTH_TOKEN") or "").strip()
    # Never echo the value: the message ends up in logs.
    if token and (len(token) < MIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable()):
        raise ConfigError(
            f"RECOMMENDER_AUTH_TOKEN must be at least {MIN_TOKEN_LENGTH} printable ASCII "
            "characters (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if " " in token:
        raise ConfigError("RECOMMENDER_AUTH_TOKEN must not contain spaces")
    return token


@dataclass(frozen=True, slots=True)
class Settings:
    listen: str = "127.0.0.1:50051"
    db_path: Path = REPO_ROOT / "var" / "recommender.sqlite3"
    demo_catalog: Path = DEMO_CATALOG
    # Seconds in-flight calls get to finish after SIGTERM before being cancelled.
    grace_seconds: float = 10.0
    # Seconds to report NOT_SERVING before refusing new calls, so load
    # balancers watching health stop routing here first.
    drain_delay_seconds: float = 0.0
    # Seconds a client's connection lives before the server asks it to move to
    # a new one (0: for ever). Clients resolve the DNS name again only when a
    # connection ends, so this bounds how long a replica added since waits for
    # its share of the calls.
    max_connection_age_seconds: float = 30.0
    # Seconds the calls in flight on a retired connection get to finish: at
    # least the longest call's deadline (the digest's stream, 60 s by default).
    max_connection_age_grace_seconds: float = 60.0
    log_level: str = "INFO"
    # Learn books and purchases from domain events (off: serve the store as is).
    consume_events: bool = True
    # Out of repr: the URL may carry a password.
    amqp_url: str = field(default=DEFAULT_AMQP_URL, repr=False)
    # Names this replica's own queue: every replica keeps its own store, so
    # each needs every event. It must stay the same across restarts.
    instance: str = field(default_factory=socket.gethostname)
    topology: Topology = field(default_factory=Topology)
    # None: plaintext (the default, for one machine or a private network).
    tls: ServerTls | None = None
    # Callers must send "authorization: Bearer <token>" (empty: no check).
    auth_token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            listen=env.get("RECOMMENDER_LISTEN") or defaults.listen,
            db_path=Path(env.get("RECOMMENDER_DB") or defaults.db_path),
            demo_catalog=Path(env.get("RECOMMENDER_DEMO_CATALOG") or defaults.demo_catalog),
            grace_seconds=_float(env, "RECOMMENDER_GRACE_SECONDS", defaults.grace_seconds),
            drain_delay_seconds=_float(
                env, "RECOMMENDER_DRAIN_DELAY_SECONDS", defaults.drain_delay_seconds
            ),
            max_connection_age_seconds=_float(
                env, "RECOMMENDER_MAX_CONNECTION_AGE_SECONDS", defaults.max_connection_age_seconds
            ),
            max_connection_age_grace_seconds=_float(
                env,
                "RECOMMENDER_MAX_CONNECTION_AGE_GRACE_SECONDS",
                defaults.max_connection_age_grace_seconds,
            ),
            log_level=_log_level(env, defaults.log_level),
            consume_events=_bool(env, "RECOMMENDER_CONSUME_EVENTS", defaults.consume_events),
            amqp_url=_amqp_url(env, defaults.amqp_url),
            instance=(env.get("RECOMMENDER_INSTANCE") or "").strip() or defaults.instance,
            topology=_topology(env),
            tls=ServerTls.from_env(env),
            auth_token=_token(env),
        )
