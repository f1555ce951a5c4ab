"""Sizes and durations of a quick run (a smoke check, < 90 s) and a full one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str
    # Recommender: the generated store, rounds per concurrency, seconds per round.
    books: int
    purchases: int
    grpc_rounds: int
    grpc_seconds: float
    concurrencies: tuple[int, ...]
    engine_calls: int
    # Sales per second a second recommender learns during its x16 rounds.
    sales_per_second: float
    # Site: rounds and seconds per subject, connections of the load generator.
    site_rounds: int
    site_seconds: float
    site_connections: int
    site_users: int
    # Events: purchases per round, rounds, worker processes (each side).
    events: int
    events_rounds: int
    events_workers: int
    # The kill test: site processes SIGKILLed between commit and dispatch, each side.
    kills: int
    # Seconds idle processes are watched (bench.cpu.idle_share); seconds each
    # server is warmed before the recommender's rounds.
    idle_seconds: float
    warm_seconds: float
    # Checkout: checkouts per round, rounds.
    checkouts: int
    checkout_rounds: int


QUICK = Mode(
    name="quick",
    books=10_000,
    purchases=100_000,
    grpc_rounds=2,
    grpc_seconds=0.5,
    concurrencies=(1, 16, 64),
    engine_calls=500,
    sales_per_second=20,
    site_rounds=1,
    site_seconds=0.6,
    site_connections=8,
    site_users=8,
    events=100,
    events_rounds=1,
    events_workers=1,
    kills=1,
    checkouts=30,
    checkout_rounds=2,
    idle_seconds=2.0,
    warm_seconds=0.3,
)

FULL = Mode(
    name="full",
    books=100_000,
    purchases=1_000_000,
    grpc_rounds=10,
    grpc_seconds=1.2,
    concurrencies=(1, 16, 64),
    engine_calls=5000,
    sales_per_second=20,
    site_rounds=10,
    site_seconds=1.5,
    site_connections=16,
    site_users=40,
    events=2000,
    events_rounds=3,
    events_workers=2,
    kills=10,
    checkouts=600,
    checkout_rounds=4,
    idle_seconds=5.0,
    warm_seconds=1.0,
)
