"""The recommender's settings, read once from the environment (12-factor)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from events.amqp import DEFAULT_AMQP_URL
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
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


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


def _topology(env: Mapping[str, str]) -> Topology:
    try:
        return Topology.from_env(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


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
    log_level: str = "INFO"
    # Learn books and purchases from domain events (off: serve the store as is).
    consume_events: bool = True
    # Out of repr: the URL may carry a password.
    amqp_url: str = field(default=DEFAULT_AMQP_URL, repr=False)
    # Names this replica's own queue: every replica keeps its own store, so
    # each needs every event. It must stay the same across restarts.
    instance: str = field(default_factory=socket.gethostname)
    topology: Topology = field(default_factory=Topology)

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
            log_level=(env.get("RECOMMENDER_LOG_LEVEL") or defaults.log_level).upper(),
            consume_events=_bool(env, "RECOMMENDER_CONSUME_EVENTS", defaults.consume_events),
            amqp_url=env.get("AMQP_URL") or defaults.amqp_url,
            instance=(env.get("RECOMMENDER_INSTANCE") or "").strip() or defaults.instance,
            topology=_topology(env),
        )
