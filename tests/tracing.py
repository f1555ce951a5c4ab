"""The test process's traces: every span it ends, in memory (the SDK's exporter).

Set up once for the session (tests/conftest.py), as each process of the shop
sets up its own at start; emptied before every test.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from events.tracing import configure_tracing, extracted
from marketplace_site.tracing import instrument_libraries

SPANS = InMemorySpanExporter()


def trace_the_tests() -> None:
    configure_tracing("tests", processor=SimpleSpanProcessor(SPANS))
    instrument_libraries()


@contextmanager
def within(carrier: Mapping[str, object] | None) -> Iterator[None]:
    """Runs the block in the trace ``carrier`` holds."""
    token = context.attach(extracted(carrier))
    try:
        yield
    finally:
        context.detach(token)
