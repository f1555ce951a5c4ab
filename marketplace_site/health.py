"""Liveness and readiness for process supervisors and load balancers.

/healthz: the process answers. /readyz: what it depends on, each with its
state. Only the database makes the site unready: without the broker the
outbox holds events, and without the recommender pages show best sellers, so
those two are reported ("degraded") but keep the site in rotation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kombu import Connection

from marketplace_site.recommendations.selectors import recommender_client

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 1.0


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests; dependencies are not checked here."""
    return JsonResponse({"status": "ok"})


def database_ping() -> None:
    """One round trip to the database; raises if it cannot be reached (the
    worker asks the same after a failed batch: marketplace_site.event_handlers)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    with Connection(settings.AMQP_URL, connect_timeout=CHECK_TIMEOUT) as broker:
        # kombu takes any number of seconds; celery-types says an int.
        broker.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT)  # type: ignore[arg-type]


def _recommender() -> None:
    # Over the pages' own channel: same credentials (TLS, client certificate), and
    # "up" means the channel pages use can reach it. Health needs no token.
    channel = recommender_client().channel()
    # types-grpcio-health-checking's HealthStub declares none of its methods.
    reply = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
        health_pb2.HealthCheckRequest(), timeout=CHECK_TIMEOUT
    )
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise RuntimeError(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


CHECKS: dict[str, tuple[Callable[[], None], bool]] = {
    # name: (check, required for readiness)
    "database": (database_ping, True),
    "broker": (_broker, False),
    "recommender": (_recommender, False),
}


def _run(name: str, check: Callable[[], None]) -> dict[str, object]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure is a state to report, not a 500
        # Anyone may read /readyz: the error's kind only; its text (host names,
        # database names) goes to the log.
        log.warning("readiness: %s is down: %s: %s", name, type(exc).__name__, exc)
        state: dict[str, object] = {"state": "down", "error": type(exc).__name__}
    else:
        state = {"state": "up"}
    state["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return state


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {name: _run(name, check) for name, (check, _) in CHECKS.items()}
    ready = all(checks[name]["state"] == "up" for name, (_, required) in CHECKS.items() if required)
    degraded = any(c["state"] != "up" for c in checks.values())
    status = "not_ready" if not ready else ("degraded" if degraded else "ready")
    return JsonResponse({"status": status, "checks": checks}, status=200 if ready else 503)
