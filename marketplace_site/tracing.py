"""The site's processes traced (events.tracing): the web site, the relay, the
Celery worker and beat, each under its own service name.

The maintained instrumentations do the tracing of what they know: Django's
requests, the gRPC calls to the recommender, the database's statements,
Celery's tasks (the password reset's e-mail, the digest). The trace context
also goes where they cannot see: into each outbox row, and on with the event.
With OTEL_SDK_DISABLED=true none of them is instrumented.
"""

from __future__ import annotations

import sys

from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

from events.tracing import configure_tracing, tracing_disabled

# Which process this is, by its command line: "manage.py run_relay", "celery worker".
SERVICES = {"run_relay": "relay", "worker": "worker", "beat": "beat"}


def service_name(argv: list[str] = sys.argv) -> str:
    """The process's default name in a trace (OTEL_SERVICE_NAME wins)."""
    return next((SERVICES[arg] for arg in argv[1:] if arg in SERVICES), "marketplace-site")


def instrument(service: str | None = None) -> None:
    """Once per process, before it serves anything."""
    exporting = configure_tracing(service or service_name())
    if not tracing_disabled():
        instrument_libraries(details=exporting)


def instrument_libraries(*, details: bool = True) -> None:
    """Requests and calls always: they carry the trace on and give log lines
    their trace id. Statements and tasks (``details``) only when spans go
    somewhere: each statement's span costs a little, for nothing if dropped."""
    DjangoInstrumentor().instrument()
    GrpcInstrumentorClient().instrument()
    if details:
        PsycopgInstrumentor().instrument(enable_commenter=False)
        SQLite3Instrumentor().instrument()
        CeleryInstrumentor().instrument()
