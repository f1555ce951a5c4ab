"""The recommender's settings, read once from the environment (12-factor)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
        )
