"""Prometheus metrics of the relay and the event consumers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, start_http_server

if TYPE_CHECKING:
    from events.relay import OutboxRow

log = logging.getLogger(__name__)

RELAY_PUBLISHED = Counter(
    "events_relay_published", "Outbox rows published and confirmed by the broker.", ["event_type"]
)
RELAY_LAG = Gauge(
    "events_relay_outbox_lag_seconds",
    "Age of the last published row when its confirm arrived (0 when idle).",
)
HANDLED = Counter(
    "events_handled",
    "Events taken from a queue, by consumer, type and result.",
    ["consumer", "event_type", "result"],
)
DEAD_LETTERED = Counter(
    "events_dead_lettered", "Messages parked in a dead-letter queue.", ["consumer"]
)


def relay_published(rows: Sequence[OutboxRow], lag_seconds: float) -> None:
    for row in rows:
        RELAY_PUBLISHED.labels(event_type=row.event_type).inc()
    RELAY_LAG.set(lag_seconds)


# Where the processes without a web server serve /metrics (METRICS_ADDR).
DEFAULT_METRICS_ADDR = "127.0.0.1"


def serve_metrics(port: int | None, *, address: str, variable: str) -> None:
    """Expose /metrics on ``port`` (set by ``variable``), if there is one."""
    if port is None:
        return
    try:
        start_http_server(port, addr=address)
    except OSError as exc:
        # Something else has the port (another shop's process, say): one
        # line that names what to change, not a traceback from deep inside
        # the process's start, then out.
        log.critical(
            "cannot serve metrics on %s:%s (%s): set %s to a free port",
            address,
            port,
            exc.strerror or exc,
            variable,
        )
        raise SystemExit(2) from None
    log.info("metrics on :%s/metrics", port)
